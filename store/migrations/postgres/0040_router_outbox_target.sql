-- The router's admission asks, per group, which of its (originator, target)
-- pairs already have a command in the outbox (router_outbox by target, then
-- the command's originator): an index seek per target instead of a scan of
-- the outbox, which grows when meters are unreachable. Keep in step with
-- ../sqlite/0040_router_outbox_target.sql.

CREATE INDEX router_outbox_target ON router_outbox (target);
