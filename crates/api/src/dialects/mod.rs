//! One folder per client dialect.

pub mod quickstart;
pub mod reverse;
pub mod runway;

pub(crate) use reelay_core::validate::longer_than_utf16;

/// The longest string a hand-parsed dialect field may hold: media fields carry URLs or data
/// URIs (bounded as Runway bounds them), every other field is text with the catalog's default
/// bound. The catalog re-checks what it maps; this bound covers what it never sees (styles,
/// watermarks, model words, callback URLs) and keeps a 20 MiB field from being copied around.
pub(crate) fn string_bound(media: bool) -> usize {
    if media {
        reelay_core::media_ref::AV_DATA_URI_MAX
    } else {
        reelay_core::catalog::DEFAULT_TEXT_MAX_UTF16
    }
}
