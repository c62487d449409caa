//! A real H.264 MP4 clip made in process (OpenH264's encoder and the `mp4` muxer, no ffmpeg),
//! so the simulator can serve outputs of a chosen resolution and size, and tests can check the
//! frames a gateway derives from them: the first frame is solid [`FIRST_COLOUR`] with a white
//! square at [`MARKER`], the last one solid [`LAST_COLOUR`], and the frames in between carry
//! moving texture (so decoding them costs what a real video's frames cost).

use std::io::Cursor;

use bytes::Bytes;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod};
use openh264::formats::{RgbSliceU8, YUVBuffer};
use openh264::OpenH264API;

/// Colour of the whole first frame, except the marker.
pub const FIRST_COLOUR: [u8; 3] = [220, 30, 30];
/// Colour of the whole last frame.
pub const LAST_COLOUR: [u8; 3] = [30, 40, 220];
/// The white square of the first frame: x, y, side (pixels).
pub const MARKER: (u32, u32, u32) = (16, 16, 32);

/// What clip to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSpec {
    /// Even, 32..=3840.
    pub width: u32,
    /// Even, 32..=2160.
    pub height: u32,
    /// At least 2.
    pub frames: u32,
    pub fps: u32,
    /// A sync sample (IDR) every this many frames.
    pub keyframe_interval: u32,
}

impl Default for ClipSpec {
    /// What Runway makes: 1280×720, five seconds at 24 fps.
    fn default() -> Self {
        ClipSpec {
            width: 1280,
            height: 720,
            frames: 120,
            fps: 24,
            keyframe_interval: 48,
        }
    }
}

impl ClipSpec {
    pub fn sized(width: u32, height: u32) -> ClipSpec {
        ClipSpec {
            width,
            height,
            ..ClipSpec::default()
        }
    }

    /// `WIDTHxHEIGHT` (`1280x720`), five seconds at 24 fps.
    pub fn parse_size(size: &str) -> Result<ClipSpec, String> {
        let bad = || format!("video size {size:?}: expected WIDTHxHEIGHT, e.g. 1280x720");
        let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
        let spec = ClipSpec::sized(
            w.trim().parse().map_err(|_| bad())?,
            h.trim().parse().map_err(|_| bad())?,
        );
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<(), String> {
        let even = |n: u32| n.is_multiple_of(2);
        if !(32..=3840).contains(&self.width)
            || !(32..=2160).contains(&self.height)
            || !even(self.width)
            || !even(self.height)
        {
            return Err(format!(
                "video size {}x{}: width and height must be even, 32..=3840 by 32..=2160",
                self.width, self.height
            ));
        }
        if !(2..=10_000).contains(&self.frames) || !(1..=120).contains(&self.fps) {
            return Err("video frames must be 2..=10000 and fps 1..=120".into());
        }
        if self.keyframe_interval == 0 {
            return Err("keyframe interval must be positive".into());
        }
        Ok(())
    }
}

/// The RGB picture of frame `n`.
fn picture(spec: &ClipSpec, n: u32, rgb: &mut [u8]) {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let last = spec.frames - 1;
    let fill = |rgb: &mut [u8], c: [u8; 3]| {
        for px in rgb.chunks_exact_mut(3) {
            px.copy_from_slice(&c);
        }
    };
    if n == 0 {
        fill(rgb, FIRST_COLOUR);
        let (mx, my, side) = MARKER;
        for y in my as usize..(my + side) as usize {
            for x in mx as usize..(mx + side) as usize {
                if x < w && y < h {
                    rgb[(y * w + x) * 3..][..3].copy_from_slice(&[255, 255, 255]);
                }
            }
        }
    } else if n == last {
        fill(rgb, LAST_COLOUR);
    } else {
        // From the first colour to the last, with diagonal bands moving across.
        let t = n as f32 / last as f32;
        let mix = |a: u8, b: u8| (a as f32 * (1.0 - t) + b as f32 * t) as i32;
        let base = [0, 1, 2].map(|i| mix(FIRST_COLOUR[i], LAST_COLOUR[i]));
        for y in 0..h {
            for x in 0..w {
                let band = ((x + y + n as usize * 8) / 24) % 4;
                let shade = (band as i32 - 2) * 18 + ((x * 7 + y * 13) % 11) as i32;
                let px = &mut rgb[(y * w + x) * 3..][..3];
                for i in 0..3 {
                    px[i] = (base[i] + shade).clamp(0, 255) as u8;
                }
            }
        }
    }
}

/// Splits an Annex-B NAL unit (with its start code) off its start code.
fn strip_start_code(nal: &[u8]) -> &[u8] {
    if let Some(rest) = nal.strip_prefix(&[0, 0, 0, 1]) {
        rest
    } else {
        nal.strip_prefix(&[0, 0, 1]).unwrap_or(nal)
    }
}

/// Encodes the clip `spec` describes into an MP4 (moov after mdat, like a camera writes).
pub fn generate(spec: &ClipSpec) -> Result<Vec<u8>, String> {
    spec.validate()?;
    let config = EncoderConfig::new()
        .bitrate(BitRate::from_bps(
            (spec.width * spec.height * spec.fps / 8).max(200_000),
        ))
        .max_frame_rate(FrameRate::from_hz(spec.fps as f32))
        .skip_frames(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(spec.keyframe_interval));
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| format!("encoder: {e}"))?;
    let (w, h) = (spec.width as usize, spec.height as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let mut samples: Vec<(bool, Vec<u8>)> = Vec::with_capacity(spec.frames as usize);
    let (mut sps, mut pps) = (None::<Vec<u8>>, None::<Vec<u8>>);
    for n in 0..spec.frames {
        picture(spec, n, &mut rgb);
        let yuv = YUVBuffer::from_rgb_source(RgbSliceU8::new(&rgb, (w, h)));
        if n.is_multiple_of(spec.keyframe_interval) {
            encoder.force_intra_frame();
        }
        let stream = encoder.encode(&yuv).map_err(|e| format!("encode: {e}"))?;
        let mut sample = Vec::new();
        let mut sync = false;
        for l in 0..stream.num_layers() {
            let Some(layer) = stream.layer(l) else {
                continue;
            };
            for i in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(i).map(strip_start_code) else {
                    continue;
                };
                let Some(&header) = nal.first() else {
                    continue;
                };
                match header & 0x1f {
                    // Parameter sets go into the avcC box, not the samples.
                    7 => {
                        sps.get_or_insert_with(|| nal.to_vec());
                    }
                    8 => {
                        pps.get_or_insert_with(|| nal.to_vec());
                    }
                    t => {
                        sync |= t == 5;
                        sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                        sample.extend_from_slice(nal);
                    }
                }
            }
        }
        if sample.is_empty() {
            return Err(format!("the encoder skipped frame {n}"));
        }
        samples.push((sync, sample));
    }
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err("the encoder wrote no parameter sets".into());
    };
    mux(spec, &sps, &pps, samples).map_err(|e| format!("mp4: {e}"))
}

fn mux(
    spec: &ClipSpec,
    sps: &[u8],
    pps: &[u8],
    samples: Vec<(bool, Vec<u8>)>,
) -> mp4::Result<Vec<u8>> {
    let brand = |s: &str| s.parse::<mp4::FourCC>().expect("four characters");
    let timescale = spec.fps * 1000;
    let mut writer = mp4::Mp4Writer::write_start(
        Cursor::new(Vec::new()),
        &mp4::Mp4Config {
            major_brand: brand("isom"),
            minor_version: 512,
            compatible_brands: ["isom", "iso2", "avc1", "mp41"].map(brand).to_vec(),
            timescale: 1000,
        },
    )?;
    writer.add_track(&mp4::TrackConfig {
        track_type: mp4::TrackType::Video,
        timescale,
        language: "und".into(),
        media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
            width: spec.width as u16,
            height: spec.height as u16,
            seq_param_set: sps.to_vec(),
            pic_param_set: pps.to_vec(),
        }),
    })?;
    for (n, (is_sync, bytes)) in samples.into_iter().enumerate() {
        writer.write_sample(
            1,
            &mp4::Mp4Sample {
                start_time: n as u64 * 1000,
                duration: 1000,
                rendering_offset: 0,
                is_sync,
                bytes: Bytes::from(bytes),
            },
        )?;
    }
    writer.write_end()?;
    Ok(writer.into_writer().into_inner())
}

/// `mp4` followed by a `free` box bringing it to `total` bytes (when it is smaller): still a
/// valid MP4, of the size a test or a benchmark wants.
pub fn padded(mut mp4: Vec<u8>, total: u64) -> Vec<u8> {
    let have = mp4.len() as u64;
    if total <= have || total - have < 8 {
        return mp4;
    }
    let pad = total - have;
    if pad <= u32::MAX as u64 {
        mp4.extend_from_slice(&(pad as u32).to_be_bytes());
        mp4.extend_from_slice(b"free");
        mp4.resize(total as usize, 0);
    } else if pad >= 16 {
        mp4.extend_from_slice(&1u32.to_be_bytes());
        mp4.extend_from_slice(b"free");
        mp4.extend_from_slice(&pad.to_be_bytes());
        mp4.resize(total as usize, 0);
    }
    mp4
}

/// Reading derived frames back, for tests of what a gateway makes of a clip (feature `jpeg`).
#[cfg(feature = "jpeg")]
pub mod jpeg {
    /// A decoded picture: width, height and RGB bytes.
    pub type Image = (usize, usize, Vec<u8>);

    /// Decodes a JPEG (panics on anything else: for tests).
    pub fn pixels(jpeg: &[u8]) -> Image {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        let rgb = d.decode().expect("a JPEG");
        let info = d.info().expect("decoded");
        (info.width as usize, info.height as usize, rgb)
    }

    /// The colour at `x`, `y`.
    pub fn pixel(img: &Image, x: usize, y: usize) -> [u8; 3] {
        let i = (y * img.0 + x) * 3;
        [img.2[i], img.2[i + 1], img.2[i + 2]]
    }

    /// Within what lossy coding changes of a flat colour.
    pub fn near(got: [u8; 3], want: [u8; 3]) -> bool {
        got.iter()
            .zip(want)
            .all(|(&g, w)| (g as i32 - w as i32).abs() <= 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_is_an_mp4_with_one_h264_track_of_its_size() {
        let spec = ClipSpec {
            width: 160,
            height: 96,
            frames: 10,
            fps: 24,
            keyframe_interval: 4,
        };
        let clip = generate(&spec).unwrap();
        assert_eq!(&clip[4..8], b"ftyp");
        let size = clip.len() as u64;
        let r = mp4::Mp4Reader::read_header(Cursor::new(&clip), size).unwrap();
        let track = r.tracks().values().next().unwrap();
        assert_eq!(track.media_type().unwrap(), mp4::MediaType::H264);
        assert_eq!((track.width(), track.height()), (160, 96));
        assert_eq!(track.sample_count(), 10);
        // IDRs at 1, 5, 9.
        let stss = track.trak.mdia.minf.stbl.stss.as_ref().unwrap();
        assert_eq!(stss.entries, vec![1, 5, 9]);

        let big = padded(clip.clone(), size + 1000);
        assert_eq!(big.len() as u64, size + 1000);
        let r = mp4::Mp4Reader::read_header(Cursor::new(&big), size + 1000).unwrap();
        assert_eq!(r.tracks().len(), 1);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(
            ClipSpec::parse_size("1280x720").unwrap(),
            ClipSpec::default()
        );
        assert_eq!(ClipSpec::parse_size("64X32").unwrap().width, 64);
        for bad in ["1280", "x720", "1280x", "axb", "33x32", "99999x720"] {
            assert!(ClipSpec::parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(generate(&ClipSpec::sized(33, 32)).is_err());
        assert!(generate(&ClipSpec::sized(8000, 720)).is_err());
        assert!(generate(&ClipSpec {
            frames: 1,
            ..ClipSpec::default()
        })
        .is_err());
    }
}
