-- The operator's task list filters by each of these, newest first; without them a filter on a
-- rare value would scan the whole table. A time range needs none: pages walk the primary key
-- newest first (ids sort by creation) and stop at a page, and an index on created_at would lure
-- the planner into reading the whole range to sort it.
CREATE INDEX tasks_state_id ON tasks(state, id);
CREATE INDEX tasks_dialect_id ON tasks(dialect, id);
CREATE INDEX tasks_model_id ON tasks(model, id);
CREATE INDEX tasks_channel_id ON tasks(channel, id);
-- The overview's recent activity: tasks by when they ended, credits by when they settled.
CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX ledger_created ON ledger_entries(created_at);
