-- Credit usage reports read an account's ledger by time range.
CREATE INDEX ledger_account_time ON ledger_entries(account_id, created_at);
