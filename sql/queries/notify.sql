-- Named queries of the notification sender and of `nightshift notify|channels`, run by
-- dispatcher/notify/store.py. The sender's writes call sql/functions/notification_*.sql, so a DBA
-- does the same from psql. Blocks are headed `-- name: <name> --`; the loader is dispatcher/queries.py.

-- name: notification_claim --
-- Claim up to `limit` due outbox rows with a lease, skipping the channels this sender holds back.
SELECT id, channel, template, payload, attempts, scan_id, created_at
  FROM nightshift.claim_notifications(%(worker)s::text, %(limit)s::int, %(lease)s::interval,
                                      %(skip)s::text[])
 ORDER BY id

-- name: notification_mark_sent --
-- The rows went out (one element per row, many messages at once); returns how many this holder still held.
SELECT nightshift.mark_notifications_sent(%(ids)s::bigint[], %(attempts)s::int[], %(responses)s::text[],
                                          %(message_ids)s::bigint[]) AS marked

-- name: notification_fail --
-- A delivery that did not succeed: retry later (after retry_after, else the backoff), failed or dead.
SELECT id, status::text
  FROM nightshift.fail_notifications(%(ids)s::bigint[], %(attempts)s::int[], %(error)s::text,
                                     %(retry)s::boolean, %(retry_after)s::interval, %(response)s::text)

-- name: notification_release --
-- Give claimed rows back unsent, without spending an attempt.
SELECT nightshift.release_notifications(%(ids)s::bigint[], %(attempts)s::int[]) AS released

-- name: notification_retry --
-- A failed or dead row goes again (`nightshift notify retry ID`).
SELECT nightshift.retry_notification(%(id)s::bigint) AS retried

-- name: notification_list --
-- The outbox, newest first, optionally one status or channel.
SELECT id, channel, template, status::text, attempts, next_attempt_at, sent_at, last_error, response,
       message_id, payload ->> 'subject' AS subject, created_at
  FROM nightshift.notifications
 WHERE (%(status)s::text IS NULL OR status::text = %(status)s::text)
   AND (%(channel)s::text IS NULL OR channel = %(channel)s::text)
 ORDER BY id DESC
 LIMIT %(limit)s::int

-- name: notification_setting --
-- One setting of the sender (notifications.*), NULL when absent.
SELECT value FROM nightshift.settings WHERE key = %(key)s::text

-- name: channel_by_names --
-- The channels of a claimed batch.
SELECT id, name, kind, settings, digest, extract(epoch FROM min_interval)::float8 AS min_interval,
       is_active
  FROM nightshift.notification_channels
 WHERE name = ANY (%(names)s::text[])

-- name: channel_list --
-- Every channel, by name.
SELECT c.id, c.name, c.kind, c.settings, c.digest, extract(epoch FROM c.min_interval)::float8 AS min_interval,
       c.is_active, o.name AS organization
  FROM nightshift.notification_channels AS c
  LEFT JOIN nightshift.organizations AS o ON o.id = c.organization_id
 ORDER BY c.name

-- name: channel_add --
-- A new channel; its settings hold secret references only (checked by the caller). No row when the
-- named organization does not exist.
INSERT INTO nightshift.notification_channels (organization_id, name, kind, settings, digest, min_interval)
SELECT o.id, %(name)s::text, %(kind)s::text, %(settings)s::jsonb, %(digest)s::text,
       make_interval(secs => %(min_interval)s::float8)
  FROM (VALUES (%(organization)s::text)) AS wanted(name)
  LEFT JOIN nightshift.organizations AS o ON o.name = wanted.name
 WHERE wanted.name IS NULL OR o.id IS NOT NULL
RETURNING id

-- name: channel_set_active --
-- Disable (or enable) a channel by name; returns its id, none when there is no such channel.
UPDATE nightshift.notification_channels SET is_active = %(active)s::boolean, updated_at = now()
 WHERE name = %(name)s::text
RETURNING id
