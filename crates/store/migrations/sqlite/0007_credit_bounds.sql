-- Credits are whole numbers. SQLite turns an integer that overflows into a REAL without a
-- word, and a REAL balance then breaks every read of the account; these triggers make such a
-- write fail instead, so its transaction rolls back. The ceiling itself (rules::MAX_BALANCE)
-- is enforced by the guarded updates; the bound here only keeps sums far from overflowing.
CREATE TRIGGER accounts_credits_are_integers_on_insert BEFORE INSERT ON accounts
WHEN typeof(NEW.credits_available) != 'integer' OR typeof(NEW.credits_held) != 'integer'
  OR NEW.credits_available < 0 OR NEW.credits_held < 0
  OR NEW.credits_available > 4000000000000000000 OR NEW.credits_held > 4000000000000000000
BEGIN
  SELECT RAISE(ABORT, 'account credits out of range');
END;

CREATE TRIGGER accounts_credits_are_integers_on_update
BEFORE UPDATE OF credits_available, credits_held ON accounts
WHEN typeof(NEW.credits_available) != 'integer' OR typeof(NEW.credits_held) != 'integer'
  OR NEW.credits_available < 0 OR NEW.credits_held < 0
  OR NEW.credits_available > 4000000000000000000 OR NEW.credits_held > 4000000000000000000
BEGIN
  SELECT RAISE(ABORT, 'account credits out of range');
END;

CREATE TRIGGER ledger_amounts_are_integers BEFORE INSERT ON ledger_entries
WHEN typeof(NEW.amount) != 'integer'
  OR NEW.amount > 4000000000000000000 OR NEW.amount < -4000000000000000000
BEGIN
  SELECT RAISE(ABORT, 'ledger amount out of range');
END;

CREATE TRIGGER task_credits_are_integers
BEFORE UPDATE OF credits_held, credits_captured, credits_refunded ON tasks
WHEN typeof(NEW.credits_held) != 'integer' OR typeof(NEW.credits_captured) != 'integer'
  OR typeof(NEW.credits_refunded) != 'integer'
  OR NEW.credits_held < 0 OR NEW.credits_captured < 0 OR NEW.credits_refunded < 0
BEGIN
  SELECT RAISE(ABORT, 'task credits out of range');
END;
