-- The number of live tasks of each account (rules::LIVE: not finished, still due), kept by
-- the database itself in the same transaction as every write that changes it, so the
-- per-account cap at accept reads one column of a row it reads anyway instead of counting
-- the account's live tasks (a cost that grew with them). The conditions below are
-- rules::LIVE; the store's tests compare the column with a count after every kind of write.
ALTER TABLE accounts ADD COLUMN live_tasks INTEGER NOT NULL DEFAULT 0;

UPDATE accounts SET live_tasks = (
  SELECT COUNT(*) FROM tasks WHERE tasks.account_id = accounts.id
    AND next_attempt_at IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'cancelled'));

CREATE TRIGGER tasks_live_on_insert AFTER INSERT ON tasks
WHEN NEW.next_attempt_at IS NOT NULL AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled')
BEGIN
  UPDATE accounts SET live_tasks = live_tasks + 1 WHERE id = NEW.account_id;
END;

CREATE TRIGGER tasks_live_on_update AFTER UPDATE OF state, next_attempt_at ON tasks
WHEN (OLD.next_attempt_at IS NOT NULL AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled'))
  != (NEW.next_attempt_at IS NOT NULL AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled'))
BEGIN
  UPDATE accounts
  SET live_tasks = live_tasks
    + (NEW.next_attempt_at IS NOT NULL AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled'))
    - (OLD.next_attempt_at IS NOT NULL AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled'))
  WHERE id = NEW.account_id;
END;

CREATE TRIGGER tasks_live_on_delete AFTER DELETE ON tasks
WHEN OLD.next_attempt_at IS NOT NULL AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled')
BEGIN
  UPDATE accounts SET live_tasks = live_tasks - 1 WHERE id = OLD.account_id;
END;
