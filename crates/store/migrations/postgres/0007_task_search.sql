-- The operator's task list filters by each of these, newest first; without them a filter on a
-- rare value would scan the whole table.
CREATE INDEX tasks_state_id ON tasks(state, id);
CREATE INDEX tasks_dialect_id ON tasks(dialect, id);
CREATE INDEX tasks_model_id ON tasks(model, id);
CREATE INDEX tasks_channel_id ON tasks(channel, id);
CREATE INDEX tasks_created ON tasks(created_at);
-- The overview's recent activity: tasks by when they ended, credits by when they settled.
CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX ledger_created ON ledger_entries(created_at);
