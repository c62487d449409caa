//! Poster and last frame of an H.264-in-MP4 video, in process: the `mp4` crate demuxes the
//! first H.264 track, OpenH264 (built from source by cargo, no system library) decodes it, and
//! the picture is encoded as a JPEG. What Runway produces needs no ffmpeg this way.
//!
//! Synchronous and CPU-bound: callers run it on a blocking thread. Every size the file states
//! is checked before it is trusted (picture dimensions, sample sizes, the `moov` box), the
//! decoding of a whole GOP stops at a deadline, and a bad file is an error, never a panic
//! (the demuxer and the bindings can panic on malformed input: that is caught here).

use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::frames::{FrameError, FrameKind};

/// Limits on what a file may ask of us.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Widest or tallest picture (8K).
    pub max_side: u32,
    /// Pixels of one picture.
    pub max_pixels: u64,
    /// One coded picture.
    pub max_sample_bytes: u32,
    /// The `moov` box (the sample tables of a long video are a few MB).
    pub max_moov_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_side: 8192,
            max_pixels: 8192 * 4352,
            max_sample_bytes: 32 << 20,
            max_moov_bytes: 64 << 20,
        }
    }
}

/// JPEG quality of the derived images (ffmpeg's `-q:v 2` is about this).
const JPEG_QUALITY: u8 = 90;

fn invalid(why: impl std::fmt::Display) -> FrameError {
    FrameError::Invalid(why.to_string())
}

/// The poster (first frame) or the last frame of the MP4 in `reader` (`size` bytes), as JPEG.
/// [`FrameError::Unsupported`] when it is not an MP4 with an H.264 track (another deriver may
/// know it); [`FrameError::Invalid`] when it claims to be one but cannot be decoded.
pub(crate) fn derive<R: Read + Seek>(
    reader: R,
    size: u64,
    kind: FrameKind,
    limits: Limits,
    timeout: Duration,
) -> Result<Bytes, FrameError> {
    let deadline = Instant::now() + timeout;
    match catch_unwind(AssertUnwindSafe(|| {
        derive_inner(reader, size, kind, limits, (deadline, timeout))
    })) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(invalid(format!("the demuxer or decoder gave up: {what}")))
        }
    }
}

fn derive_inner<R: Read + Seek>(
    mut reader: R,
    size: u64,
    kind: FrameKind,
    limits: Limits,
    (deadline, timeout): (Instant, Duration),
) -> Result<Bytes, FrameError> {
    check_boxes(&mut reader, size, &limits)?;
    reader.seek(SeekFrom::Start(0))?;
    let mut mp4 = mp4::Mp4Reader::read_header(reader, size).map_err(invalid)?;
    let track = mp4
        .tracks()
        .values()
        .filter(|t| matches!(t.media_type(), Ok(mp4::MediaType::H264)))
        .min_by_key(|t| t.track_id())
        .ok_or_else(|| FrameError::Unsupported("no H.264 track".into()))?;
    let track_id = track.track_id();
    let stbl = &track.trak.mdia.minf.stbl;
    let avc1 = stbl
        .stsd
        .avc1
        .as_ref()
        .ok_or_else(|| FrameError::Unsupported("no avc1 sample entry".into()))?;
    check_picture(avc1.width as u32, avc1.height as u32, &limits)?;
    let avcc = &avc1.avcc;
    let length_size = (avcc.length_size_minus_one & 3) as usize + 1;
    let count = track.sample_count();
    if count == 0 {
        return Err(invalid("the video track has no samples"));
    }
    let largest = if stbl.stsz.sample_size > 0 {
        stbl.stsz.sample_size
    } else {
        stbl.stsz.sample_sizes.iter().copied().max().unwrap_or(0)
    };
    if largest > limits.max_sample_bytes {
        return Err(invalid(format!("a sample of {largest} bytes")));
    }
    // The poster is the first picture; the last one needs only its GOP: from the last sync
    // sample (without an `stss` box every sample is one) to the end.
    let first = match kind {
        FrameKind::Poster | FrameKind::Spritesheet => 1,
        FrameKind::LastFrame => match &stbl.stss {
            Some(stss) => stss
                .entries
                .iter()
                .copied()
                .filter(|&s| (1..=count).contains(&s))
                .max()
                .unwrap_or(1),
            None => count,
        },
    };

    let mut parameter_sets = Vec::new();
    for nal in avcc
        .sequence_parameter_sets
        .iter()
        .chain(&avcc.picture_parameter_sets)
    {
        parameter_sets.extend_from_slice(&[0, 0, 0, 1]);
        parameter_sets.extend_from_slice(&nal.bytes);
    }
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder =
        Decoder::with_api_config(OpenH264API::from_source(), config).map_err(invalid)?;
    if !parameter_sets.is_empty() {
        // Parameter sets alone give no picture; an error here shows up on the slices.
        let _ = decoder.decode(&parameter_sets);
    }

    let mut picture: Option<Picture> = None;
    // The spritesheet samples pictures across the whole video instead of keeping one.
    let mut sheet = (kind == FrameKind::Spritesheet).then(|| Sheet::new(count));
    let mut annex_b = Vec::new();
    let mut errors = 0u32;
    let mut last_error = String::new();
    for id in first..=count {
        if Instant::now() > deadline {
            return Err(FrameError::Timeout(timeout));
        }
        let Some(sample) = mp4.read_sample(track_id, id).map_err(invalid)? else {
            continue;
        };
        to_annex_b(&sample.bytes, length_size, &mut annex_b)?;
        match decoder.decode(&annex_b) {
            Ok(Some(yuv)) => {
                if let Some(sheet) = sheet.as_mut() {
                    sheet.add(&yuv, &limits)?;
                    continue;
                }
                picture = Some(Picture::of(&yuv, &limits, picture.take())?);
                if kind == FrameKind::Poster {
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                errors += 1;
                last_error = e.to_string();
            }
        }
    }
    let want_more = kind != FrameKind::Poster || picture.is_none();
    if want_more {
        // Pictures held back for reordering come out now; the last of them is the last one.
        if let Ok(rest) = decoder.flush_remaining() {
            for yuv in rest {
                if let Some(sheet) = sheet.as_mut() {
                    sheet.add(&yuv, &limits)?;
                    continue;
                }
                picture = Some(Picture::of(&yuv, &limits, picture.take())?);
                if kind == FrameKind::Poster {
                    break;
                }
            }
        }
    }
    if let Some(sheet) = sheet {
        return sheet.finish()?.jpeg();
    }
    let picture = picture.ok_or_else(|| {
        invalid(format!(
            "no picture decoded ({errors} samples failed{}{last_error})",
            if errors > 0 { ": " } else { "" }
        ))
    })?;
    picture.jpeg()
}

/// A decoded picture's planes (4:2:0), their buffers reused from one decoded frame to the
/// next. Coded to JPEG straight from YCbCr: no conversion to RGB and back.
struct Picture {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Picture {
    fn of(
        yuv: &DecodedYUV<'_>,
        limits: &Limits,
        reuse: Option<Picture>,
    ) -> Result<Picture, FrameError> {
        let (width, height) = yuv.dimensions();
        check_picture(width as u32, height as u32, limits)?;
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (ys, us, vs) = yuv.strides();
        let (mut y, mut u, mut v) = match reuse {
            Some(p) => (p.y, p.u, p.v),
            None => Default::default(),
        };
        // Tight planes, row by row (the decoder's rows are padded to its strides).
        let copy = |out: &mut Vec<u8>, plane: &[u8], stride: usize, w: usize, h: usize| {
            out.clear();
            for row in 0..h {
                let at = row * stride;
                match plane.get(at..at + w) {
                    Some(r) => out.extend_from_slice(r),
                    None => return Err(invalid("a decoded plane is shorter than its picture")),
                }
            }
            Ok(())
        };
        copy(&mut y, yuv.y(), ys, width, height)?;
        copy(&mut u, yuv.u(), us, cw, ch)?;
        copy(&mut v, yuv.v(), vs, cw, ch)?;
        Ok(Picture {
            width,
            height,
            y,
            u,
            v,
        })
    }

    fn jpeg(&self) -> Result<Bytes, FrameError> {
        let mut out = Vec::with_capacity(self.width * self.height / 4);
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
        // The video's chroma is 4:2:0 already: coding it at full resolution (the encoder's
        // default at this quality) would only double the work for the same picture.
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        encoder
            .encode_image(Planes::new(self))
            .map_err(|e| invalid(format!("JPEG encoding: {e}")))?;
        Ok(out.into())
    }
}

/// A spritesheet in the making: every `step`-th decoded picture, scaled to a tile, up to
/// [`SHEET_TILES`], laid out [`SHEET_COLS`] to a row.
struct Sheet {
    step: u32,
    seen: u32,
    tiles: Vec<Picture>,
}

const SHEET_TILES: usize = 10;
const SHEET_COLS: usize = 5;
/// Tile width in pixels (even, so chroma planes stay exact halves).
const TILE_W: usize = 256;

impl Sheet {
    fn new(samples: u32) -> Sheet {
        Sheet {
            step: (samples / SHEET_TILES as u32).max(1),
            seen: 0,
            tiles: Vec::new(),
        }
    }

    fn add(&mut self, yuv: &DecodedYUV<'_>, limits: &Limits) -> Result<(), FrameError> {
        let n = self.seen;
        self.seen += 1;
        if !n.is_multiple_of(self.step) || self.tiles.len() >= SHEET_TILES {
            return Ok(());
        }
        let (w, h) = yuv.dimensions();
        check_picture(w as u32, h as u32, limits)?;
        // Nearest-neighbour sampling: a tile is a preview, and this costs no more than a copy.
        let tw = TILE_W;
        let th = ((tw * h / w.max(1)).max(2) + 1) & !1;
        let (ys, us, vs) = yuv.strides();
        let sample =
            |plane: &[u8], stride: usize, sw: usize, sh: usize, dw: usize, dh: usize| {
                let mut out = Vec::with_capacity(dw * dh);
                for y in 0..dh {
                    let row = (y * sh / dh).min(sh - 1) * stride;
                    for x in 0..dw {
                        let at = row + (x * sw / dw).min(sw - 1);
                        out.push(*plane.get(at).ok_or_else(|| {
                            invalid("a decoded plane is shorter than its picture")
                        })?);
                    }
                }
                Ok::<_, FrameError>(out)
            };
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        self.tiles.push(Picture {
            width: tw,
            height: th,
            y: sample(yuv.y(), ys, w, h, tw, th)?,
            u: sample(yuv.u(), us, cw, ch, tw / 2, th / 2)?,
            v: sample(yuv.v(), vs, cw, ch, tw / 2, th / 2)?,
        });
        Ok(())
    }

    fn finish(self) -> Result<Picture, FrameError> {
        let n = self.tiles.len();
        let first = self
            .tiles
            .first()
            .ok_or_else(|| invalid("no picture decoded for the spritesheet"))?;
        let (tw, th) = (first.width, first.height);
        let cols = n.min(SHEET_COLS);
        let rows = n.div_ceil(SHEET_COLS);
        let (w, h) = (cols * tw, rows * th);
        // Video-range black where the grid has no tile.
        let mut sheet = Picture {
            width: w,
            height: h,
            y: vec![16; w * h],
            u: vec![128; (w / 2) * (h / 2)],
            v: vec![128; (w / 2) * (h / 2)],
        };
        for (i, t) in self.tiles.iter().enumerate() {
            let (x0, y0) = ((i % cols) * tw, (i / cols) * th);
            for r in 0..th {
                let dst = (y0 + r) * w + x0;
                sheet.y[dst..dst + tw].copy_from_slice(&t.y[r * tw..(r + 1) * tw]);
            }
            let (cw, ch, sw) = (tw / 2, th / 2, w / 2);
            for r in 0..ch {
                let dst = (y0 / 2 + r) * sw + x0 / 2;
                sheet.u[dst..dst + cw].copy_from_slice(&t.u[r * cw..(r + 1) * cw]);
                sheet.v[dst..dst + cw].copy_from_slice(&t.v[r * cw..(r + 1) * cw]);
            }
        }
        Ok(sheet)
    }
}

/// H.264 pictures are "video range" (luma 16–235, chroma 16–240); JFIF's YCbCr is full range.
/// Same BT.601 matrix, so only the ranges are stretched.
struct Planes<'a> {
    picture: &'a Picture,
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl<'a> Planes<'a> {
    fn new(picture: &'a Picture) -> Planes<'a> {
        let stretch = |lo: f32, span: f32, centre: f32| {
            std::array::from_fn(|i| {
                let x = ((i as f32 - lo) * 255.0 / span + centre).round();
                x.clamp(0.0, 255.0) as u8
            })
        };
        Planes {
            picture,
            luma: stretch(16.0, 219.0, 0.0),
            chroma: stretch(128.0, 224.0, 128.0),
        }
    }
}

impl jpeg_encoder::ImageBuffer for Planes<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.picture.width as u16
    }

    fn height(&self) -> u16 {
        self.picture.height as u16
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let p = self.picture;
        let (w, cw) = (p.width, p.width.div_ceil(2));
        let y = &p.y[row as usize * w..][..w];
        buffers[0].extend(y.iter().map(|&l| self.luma[l as usize]));
        let c = (row as usize / 2) * cw;
        for (plane, out) in [(&p.u, 1), (&p.v, 2)] {
            // Each chroma sample covers two pixels of the row.
            let samples = &plane[c..c + cw];
            let doubled = samples
                .iter()
                .flat_map(|&s| [self.chroma[s as usize]; 2])
                .take(w);
            buffers[out].extend(doubled);
        }
    }
}

fn check_picture(width: u32, height: u32, limits: &Limits) -> Result<(), FrameError> {
    if width == 0
        || height == 0
        || width > limits.max_side
        || height > limits.max_side
        || width as u64 * height as u64 > limits.max_pixels
    {
        return Err(invalid(format!("a picture of {width}x{height}")));
    }
    Ok(())
}

/// AVCC samples (NAL units behind big-endian lengths) to the Annex-B stream OpenH264 reads
/// (each unit behind a start code).
fn to_annex_b(sample: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    out.clear();
    let mut rest = sample;
    while !rest.is_empty() {
        if rest.len() < length_size {
            return Err(invalid("a sample ends inside a NAL length"));
        }
        let (len, tail) = rest.split_at(length_size);
        let len = len.iter().fold(0usize, |n, &b| (n << 8) | b as usize);
        if len == 0 || len > tail.len() {
            return Err(invalid("a NAL unit runs past its sample"));
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&tail[..len]);
        rest = &tail[len..];
    }
    Ok(())
}

/// Walks the top-level boxes: an MP4 starts with `ftyp` and has a `moov` of sane size. Anything
/// else is not ours to decode (ffmpeg may know it); an impossible box is a broken file.
fn check_boxes<R: Read + Seek>(r: &mut R, size: u64, limits: &Limits) -> Result<(), FrameError> {
    let mut pos = 0u64;
    let mut moov = false;
    for n in 0..4096 {
        if pos + 8 > size {
            break;
        }
        r.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 16];
        r.read_exact(&mut header[..8])?;
        let kind = [header[4], header[5], header[6], header[7]];
        let mut box_size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
        if box_size == 1 {
            r.read_exact(&mut header[8..])?;
            box_size = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        } else if box_size == 0 {
            box_size = size - pos;
        }
        if n == 0 && &kind != b"ftyp" {
            return Err(FrameError::Unsupported(
                "not an MP4 (no ftyp box first)".into(),
            ));
        }
        if box_size < 8 || box_size > size - pos {
            return Err(invalid(format!(
                "box {:?} of {box_size} bytes at {pos} in a file of {size}",
                String::from_utf8_lossy(&kind)
            )));
        }
        if &kind == b"moov" {
            if box_size > limits.max_moov_bytes {
                return Err(invalid(format!("a moov box of {box_size} bytes")));
            }
            moov = true;
        }
        pos += box_size;
    }
    if !moov {
        return Err(invalid("no moov box"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use reelay_sim::clip::jpeg::{near, pixel, pixels};
    use reelay_sim::clip::{self, ClipSpec, FIRST_COLOUR, LAST_COLOUR, MARKER};

    use super::*;

    fn spec() -> ClipSpec {
        ClipSpec {
            width: 320,
            height: 180,
            frames: 30,
            fps: 24,
            keyframe_interval: 12,
        }
    }

    fn run(bytes: &[u8], kind: FrameKind) -> Result<Bytes, FrameError> {
        derive(
            Cursor::new(bytes),
            bytes.len() as u64,
            kind,
            Limits::default(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn the_spritesheet_tiles_pictures_from_first_to_last() {
        // 30 frames, a tile every 3rd: ten tiles, five to a row, 256 wide at the clip's shape.
        let clip = clip::generate(&spec()).unwrap();
        let sheet = pixels(&run(&clip, FrameKind::Spritesheet).unwrap());
        assert_eq!((sheet.0, sheet.1), (5 * 256, 2 * 144));
        let first = pixel(&sheet, 128, 72);
        assert!(near(first, FIRST_COLOUR), "first tile {first:?}");
        // The last tile is frame 27 of 30: the clip's colour moves from first to last, so it
        // is nearer the last colour than the first tile is.
        let last = pixel(&sheet, 4 * 256 + 128, 144 + 72);
        let dist = |a: [u8; 3], b: [u8; 3]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (*x as i32 - y as i32).abs())
                .sum::<i32>()
        };
        assert!(
            dist(last, LAST_COLOUR) < dist(first, LAST_COLOUR),
            "last tile {last:?}"
        );
        // A two-frame clip makes a one-row sheet of two tiles.
        let short = clip::generate(&ClipSpec {
            frames: 2,
            ..spec()
        })
        .unwrap();
        let s = pixels(&run(&short, FrameKind::Spritesheet).unwrap());
        assert_eq!((s.0, s.1), (2 * 256, 144));
    }

    #[test]
    fn poster_and_last_frame_are_the_clips_pictures() {
        let clip = clip::generate(&spec()).unwrap();
        let poster = pixels(&run(&clip, FrameKind::Poster).unwrap());
        assert_eq!((poster.0, poster.1), (320, 180));
        let centre = pixel(&poster, 160, 90);
        assert!(near(centre, FIRST_COLOUR), "poster centre {centre:?}");
        let (mx, my, side) = MARKER;
        let marker = pixel(&poster, (mx + side / 2) as usize, (my + side / 2) as usize);
        assert!(near(marker, [255, 255, 255]), "marker {marker:?}");

        let last = pixels(&run(&clip, FrameKind::LastFrame).unwrap());
        assert_eq!((last.0, last.1), (320, 180));
        for (x, y) in [(160, 90), (5, 5), (310, 170)] {
            let p = pixel(&last, x, y);
            assert!(near(p, LAST_COLOUR), "last frame at {x},{y}: {p:?}");
        }
    }

    #[test]
    fn the_embedded_sample_decodes() {
        let poster = run(reelay_sim::SAMPLE_MP4, FrameKind::Poster).unwrap();
        let last = run(reelay_sim::SAMPLE_MP4, FrameKind::LastFrame).unwrap();
        assert!(pixels(&poster).0 > 0 && pixels(&last).0 > 0);
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        let clip = clip::generate(&spec()).unwrap();
        // Not an MP4 at all: another deriver's business.
        for other in [&b"\x89PNG\r\n\x1a\n0000000000000000"[..], b"", b"GIF89a"] {
            assert!(matches!(
                run(other, FrameKind::Poster),
                Err(FrameError::Unsupported(_) | FrameError::Invalid(_))
            ));
        }
        // Truncated anywhere, and with bytes flipped in the sample tables and the pictures.
        for cut in [9, 100, clip.len() / 3, clip.len() / 2, clip.len() - 10] {
            let r = run(&clip[..cut], FrameKind::LastFrame);
            assert!(r.is_err(), "cut at {cut}");
        }
        let mut seed = 7u64;
        for round in 0..60 {
            let mut bad = clip.clone();
            for _ in 0..1 + round % 8 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % bad.len();
                bad[at] ^= (seed >> 17) as u8 | 1;
            }
            // Either a picture or an error: what matters is no panic and no hang.
            let _ = run(&bad, FrameKind::Poster);
            let _ = run(&bad, FrameKind::LastFrame);
        }
    }

    #[test]
    fn absurd_sizes_are_refused() {
        let clip = clip::generate(&spec()).unwrap();
        let with = |limits: Limits| {
            derive(
                Cursor::new(&clip),
                clip.len() as u64,
                FrameKind::Poster,
                limits,
                Duration::from_secs(60),
            )
        };
        let r = with(Limits {
            max_side: 100,
            ..Limits::default()
        });
        assert!(matches!(r, Err(FrameError::Invalid(m)) if m.contains("320x180")));
        let r = with(Limits {
            max_sample_bytes: 10,
            ..Limits::default()
        });
        assert!(matches!(r, Err(FrameError::Invalid(m)) if m.contains("sample")));
    }

    #[test]
    fn annex_b_conversion_checks_lengths() {
        let mut out = Vec::new();
        to_annex_b(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41], 4, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 1, 0, 0, 0, 1, 0x41]);
        assert!(to_annex_b(&[0, 0, 0, 9, 0x65], 4, &mut out).is_err());
        assert!(to_annex_b(&[0, 0], 4, &mut out).is_err());
        assert!(to_annex_b(&[0, 0, 0, 0], 4, &mut out).is_err());
    }
}
