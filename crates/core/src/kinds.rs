//! The kinds the rest of the domain is written in terms of: what a task does and what media
//! it takes or makes. A leaf: it imports nothing of this crate.

use serde::{Deserialize, Serialize};

/// What a task does, whatever dialect it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    TextToVideo,
    ImageToVideo,
    VideoToVideo,
    CharacterPerformance,
    Extend,
    Upscale,
    TextToImage,
    ImageUpscale,
    SoundEffect,
    TextToSpeech,
    SpeechToSpeech,
    VoiceDubbing,
    VoiceIsolation,
    VideoToAudio,
    VideoToHdr,
}

/// What a piece of media is: what a field takes, and what a task makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}
