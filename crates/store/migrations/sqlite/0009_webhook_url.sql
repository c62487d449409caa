-- An account-wide webhook URL: where dialects without a per-request callback field (OpenAI's
-- `/v1/videos`) deliver their events.
ALTER TABLE accounts ADD COLUMN webhook_url TEXT;
