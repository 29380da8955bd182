-- Next-run arithmetic, in UTC. A target's slots are the start of each period (hour, day, ISO week from
-- Monday 00:00, calendar month) plus its offset (nightshift.schedule_offset). The result is the first slot
-- strictly after p_from, so "advance to the first slot in the future" is next_run_at(frequency, now(), id):
-- however many slots were missed, that is one step.
--
-- Why it works: with u = p_from - offset, the period containing u starts at P = date_trunc(unit, u), so
-- P + offset <= p_from < P + period + offset, and the answer is P + period + offset. Period starts are
-- always the 1st of a month and offsets are < 28 days, so from January 31 the next MONTHLY slot lies in
-- February: a short month never skips or doubles a slot.
--
-- One SELECT of expressions, IMMUTABLE, no SET clause: the planner inlines it into set-based statements.
CREATE OR REPLACE FUNCTION nightshift.next_run_at(
    p_frequency nightshift.frequency,
    p_from timestamptz,
    p_target_id bigint
)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    /* The first slot of this target strictly after p_from; NULL for UNMONITORED (it has no slots). */
    -- AT TIME ZONE 'UTC' makes date_trunc independent of the session's TimeZone setting
    SELECT (pg_catalog.date_trunc(
                CASE p_frequency
                    WHEN 'HOURLY' THEN 'hour' WHEN 'DAILY' THEN 'day'
                    WHEN 'WEEKLY' THEN 'week' WHEN 'MONTHLY' THEN 'month'
                END,
                (p_from AT TIME ZONE 'UTC') - nightshift.schedule_offset(p_frequency, p_target_id))
            + CASE p_frequency
                  WHEN 'HOURLY' THEN interval '1 hour' WHEN 'DAILY' THEN interval '1 day'
                  WHEN 'WEEKLY' THEN interval '7 days' WHEN 'MONTHLY' THEN interval '1 month'
              END
            + nightshift.schedule_offset(p_frequency, p_target_id)) AT TIME ZONE 'UTC'
$$;
