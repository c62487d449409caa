-- kie.ai-style callback signatures (quick-start dialect): an optional per-account HMAC key,
-- sealed like the webhook secret, and the id a message's signature covers.
ALTER TABLE accounts ADD COLUMN webhook_hmac_key TEXT;
ALTER TABLE webhook_messages ADD COLUMN hmac_subject TEXT;
