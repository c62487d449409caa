-- The number of live tasks of each account (rules::LIVE: not finished, still due), kept by
-- the database itself in the same transaction as every write that changes it, so the
-- per-account cap at accept reads one column of the account row it locks anyway instead of
-- counting the account's live tasks (a cost that grew with them). The conditions below are
-- rules::LIVE; the store's tests compare the column with a count after every kind of write.
ALTER TABLE accounts ADD COLUMN live_tasks BIGINT NOT NULL DEFAULT 0;

UPDATE accounts SET live_tasks = (
  SELECT COUNT(*) FROM tasks WHERE tasks.account_id = accounts.id
    AND next_attempt_at IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'cancelled'));

CREATE FUNCTION tasks_live_adjust() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was_live BOOLEAN := TG_OP <> 'INSERT' AND OLD.next_attempt_at IS NOT NULL
    AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled');
  is_live BOOLEAN := TG_OP <> 'DELETE' AND NEW.next_attempt_at IS NOT NULL
    AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled');
BEGIN
  IF was_live IS DISTINCT FROM is_live THEN
    UPDATE accounts SET live_tasks = live_tasks + (CASE WHEN is_live THEN 1 ELSE -1 END)
    WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.account_id ELSE NEW.account_id END;
  END IF;
  RETURN NULL;
END $$;

-- The WHEN clauses keep the function out of the writes that cannot change the count (a poll
-- moving next_attempt_at of a live task forward).
CREATE TRIGGER tasks_live_on_insert AFTER INSERT ON tasks FOR EACH ROW
WHEN (NEW.next_attempt_at IS NOT NULL AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled'))
EXECUTE FUNCTION tasks_live_adjust();

CREATE TRIGGER tasks_live_on_update AFTER UPDATE OF state, next_attempt_at ON tasks FOR EACH ROW
WHEN ((OLD.next_attempt_at IS NOT NULL AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled'))
  IS DISTINCT FROM (NEW.next_attempt_at IS NOT NULL AND NEW.state NOT IN ('succeeded', 'failed', 'cancelled')))
EXECUTE FUNCTION tasks_live_adjust();

CREATE TRIGGER tasks_live_on_delete AFTER DELETE ON tasks FOR EACH ROW
WHEN (OLD.next_attempt_at IS NOT NULL AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled'))
EXECUTE FUNCTION tasks_live_adjust();
