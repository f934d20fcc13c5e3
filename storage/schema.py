"""Numbered schema migrations, applied in order at start-up."""
from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("visitsafe")


@migrations(name="0001_core")
def _core(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE visits (
            id INTEGER PRIMARY KEY,
            state TEXT NOT NULL,
            requester TEXT NOT NULL,
            companions TEXT NOT NULL,          -- JSON list of user ids
            start_at REAL NOT NULL,            -- epoch seconds (UTC)
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            departed_at REAL,
            expected_return REAL,
            returned_at REAL,
            returned_home INTEGER NOT NULL DEFAULT 0,
            details TEXT NOT NULL,             -- JSON: personal details, purged after retention
            answers TEXT NOT NULL,             -- JSON: risk answers
            assessment TEXT NOT NULL,          -- JSON: level, reminders, reasons
            slots TEXT NOT NULL,               -- JSON: approvals required
            ladder TEXT NOT NULL DEFAULT '[]', -- JSON: escalation frozen at /out
            purged_at REAL
        );
        CREATE INDEX visits_requester_state ON visits(requester, state);
        CREATE INDEX visits_state_start ON visits(state, start_at);

        CREATE TABLE approvals (
            visit_id INTEGER NOT NULL REFERENCES visits(id),
            slot TEXT NOT NULL,
            approver TEXT NOT NULL,
            approved INTEGER NOT NULL,
            reason TEXT,
            decided_at REAL NOT NULL,
            PRIMARY KEY (visit_id, slot),      -- one decision per role, enforced by the database
            UNIQUE (visit_id, approver)
        );

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            visit_id INTEGER,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_visit ON audit(visit_id);
        -- Append-only: the log of who did what cannot be edited or deleted through the app.
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

        CREATE TABLE register (
            id INTEGER PRIMARY KEY,
            address_key TEXT,
            family_key TEXT,
            flag TEXT NOT NULL,
            reason TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at REAL NOT NULL,
            cleared_at REAL
        );
        CREATE INDEX register_address ON register(address_key);
        CREATE INDEX register_family ON register(family_key);

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT UNIQUE,                   -- one logical message is queued once
            visit_id INTEGER,
            target TEXT NOT NULL,
            payload TEXT NOT NULL,             -- JSON of flows.messages.Message
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            sent_at REAL,
            last_error TEXT
        );
        CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
        CREATE INDEX outbox_target ON outbox(target, status, id);

        CREATE TABLE message_refs (
            ref TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            ts TEXT NOT NULL
        );

        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        );

        CREATE TABLE heartbeats (
            name TEXT PRIMARY KEY,
            at REAL NOT NULL
        );
        """
    )


@migrations(name="0002_safety_net")
def _safety_net(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE visits ADD COLUMN watch TEXT NOT NULL DEFAULT '{}';  -- JSON: check-ins, ladder, acks
        ALTER TABLE visits ADD COLUMN next_due_at REAL;                 -- when the sweep must look again
        CREATE INDEX visits_due ON visits(next_due_at) WHERE next_due_at IS NOT NULL;

        ALTER TABLE outbox ADD COLUMN fell_back INTEGER NOT NULL DEFAULT 0;

        CREATE TABLE duress_words (
            user TEXT PRIMARY KEY,
            salt BLOB NOT NULL,
            digest BLOB NOT NULL,
            set_at REAL NOT NULL
        );
        """
    )


@migrations(name="0003_rounds")
def _rounds(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE visits ADD COLUMN round_lead INTEGER;          -- several visits in one trip
        ALTER TABLE visits ADD COLUMN round_pos INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX visits_round ON visits(round_lead) WHERE round_lead IS NOT NULL;
        """
    )


@migrations(name="0004_retention")
def _retention(db: Database) -> None:
    db.executescript(
        """
        CREATE INDEX visits_to_purge ON visits(updated_at)
            WHERE purged_at IS NULL AND state IN ('declined', 'cancelled', 'expired', 'returned', 'closed');
        """
    )


@migrations(name="0005_delivery")
def _delivery(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN alert INTEGER NOT NULL DEFAULT 0;  -- never terminal: retried until delivered or superseded
        ALTER TABLE outbox ADD COLUMN refused INTEGER NOT NULL DEFAULT 0; -- Slack refused it outright: its fallback copies go at once
        ALTER TABLE outbox ADD COLUMN first_attempt_at REAL;             -- where to look in Slack for a post the process died during
        UPDATE outbox SET alert = 1 WHERE key LIKE 'alert:%' OR key LIKE 'sos:%';
        -- Alerts of live visits that an earlier version gave up on are queued again.
        UPDATE outbox SET status = 'pending', refused = 1
            WHERE alert = 1 AND status = 'failed' AND visit_id IN (SELECT id FROM visits WHERE state IN ('out', 'overdue', 'emergency'));
        CREATE INDEX outbox_waiting_alerts ON outbox(created_at) WHERE alert = 1 AND status IN ('pending', 'sending');
        """
    )


@migrations(name="0006_interactions")
def _interactions(db: Database) -> None:
    db.executescript(
        """
        -- Step 1 of /visit while step 2 is open: the view carries only the id.
        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY,
            user TEXT NOT NULL,
            payload TEXT NOT NULL,             -- JSON: the step-1 answers, purged after a day
            created_at REAL NOT NULL
        );
        CREATE INDEX drafts_created ON drafts(created_at);

        -- Request signatures already acted on, shared by every process on this database.
        CREATE TABLE seen_signatures (
            signature TEXT PRIMARY KEY,
            seen_at REAL NOT NULL
        );
        CREATE INDEX seen_signatures_at ON seen_signatures(seen_at);
        """
    )


@migrations(name="0008_clock")
def _clock(db: Database) -> None:
    db.executescript(
        """
        -- Every wall-clock step a process detected (against its monotonic clock); /healthz shows a day of them.
        CREATE TABLE clock_steps (
            id INTEGER PRIMARY KEY,
            wall_before REAL NOT NULL,         -- what the clock would have said without the step
            wall_after REAL NOT NULL,          -- what it said
            seconds REAL NOT NULL,             -- positive: forward
            holder TEXT NOT NULL               -- the process that saw it
        );
        CREATE INDEX clock_steps_after ON clock_steps(wall_after);

        -- A forward step not yet put right (one row at most): times written since `since` may be ahead.
        CREATE TABLE clock_offset (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            ahead_s REAL NOT NULL,
            since REAL NOT NULL
        );
        """
    )


@migrations(name="0012_hot_indexes")
def _hot_indexes(db: Database) -> None:
    db.executescript(
        """
        -- A visit's alert messages (alert_refs on every /back, /checkin and ladder step), a purged visit's copies,
        -- and messages tied to no visit (purge_unlinked_messages every tick): without it each read the whole outbox.
        CREATE INDEX IF NOT EXISTS outbox_visit ON outbox(visit_id, created_at);
        -- Today's board (visits planned in a day): the state index cannot answer a range of start times alone.
        CREATE INDEX IF NOT EXISTS visits_start ON visits(start_at);
        -- Who decided what ("waiting for your decision" skips the visits this person already decided).
        CREATE INDEX IF NOT EXISTS approvals_approver ON approvals(approver, visit_id);
        """
    )


@migrations(name="0014_confidential")
def _confidential(db: Database) -> None:
    db.executescript(
        """
        -- That a confidential conversation exists (issue 13 item 4): ids and a time only, never its contents.
        CREATE TABLE confidential_conversations (
            id INTEGER PRIMARY KEY,
            opened_at REAL NOT NULL,
            opened_by TEXT NOT NULL,           -- user id of who opened it
            with_user TEXT NOT NULL,           -- user id of the other person in it
            visit_id INTEGER,                  -- the visit it is about, if any
            conversation TEXT NOT NULL         -- the platform's id for it (a Slack group DM, a Chat space)
        );
        CREATE INDEX confidential_visit ON confidential_conversations(visit_id);
        CREATE INDEX confidential_opened ON confidential_conversations(opened_at);
        """
    )


@migrations(name="0015_chat")
def _chat(db: Database) -> None:
    db.executescript(
        """
        -- Values made once per database: the install id Google Chat message ids are derived from (issue 13).
        CREATE TABLE install_settings (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
    )


@migrations(name="0016_after_visit")
def _after_visit(db: Database) -> None:
    """The back half of a visit (issue 14) and drills (issue 15): one schema several features share.

    Free text (`detail`, `notes`, `why`, a cleared flag's reason) is personal data and is purged after the
    policy's retention; the kinds, times and ids the governors' report counts are kept.
    """
    db.executescript(
        """
        -- What the visitor said about a visit after /back: one outcome per visit, enforced by the key.
        CREATE TABLE outcomes (
            visit_id INTEGER PRIMARY KEY REFERENCES visits(id),
            outcome TEXT NOT NULL,             -- no_concerns, nobody_home, concern, incident, left_unsafe, allegation
            given_by TEXT NOT NULL,            -- user id
            given_at REAL NOT NULL,
            card TEXT,                         -- nobody_home: the card left (contact, appointment, message)
            debrief_offered_at REAL,           -- incident: the DSL debrief offered ...
            debrief_answer TEXT,               -- ... and the visitor's answer (yes, no), when given
            debrief_answered_at REAL
        );
        CREATE INDEX outcomes_given ON outcomes(given_at);

        -- Safeguarding reports: a /concern during a visit, or the form behind an outcome (concern, incident,
        -- left_unsafe, allegation). `detail` is the form's answers as JSON, purged after retention.
        CREATE TABLE concerns (
            id INTEGER PRIMARY KEY,
            visit_id INTEGER REFERENCES visits(id),
            kind TEXT NOT NULL,                -- concern, incident, left_unsafe, allegation
            raised_by TEXT NOT NULL,
            raised_at REAL NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            purged_at REAL
        );
        CREATE INDEX concerns_visit ON concerns(visit_id);
        CREATE INDEX concerns_raised ON concerns(raised_at);

        -- Recording a visit on the school's system (CPOMS) within the policy's record_deadline: the sweep's timers.
        CREATE TABLE records (
            visit_id INTEGER PRIMARY KEY REFERENCES visits(id),
            owner TEXT NOT NULL,               -- who should record it (the visitor)
            due_at REAL NOT NULL,              -- returned + record_deadline
            remind_at REAL NOT NULL,           -- returned + record_deadline / 2
            reminded_at REAL,                  -- the reminder was queued (once)
            escalated_at REAL,                 -- the DSL was told (once)
            recorded_at REAL,
            recorded_by TEXT
        );
        CREATE INDEX records_open ON records(remind_at) WHERE recorded_at IS NULL;

        -- Referrals to another agency, logged from a visit's record.
        CREATE TABLE referrals (
            id INTEGER PRIMARY KEY,
            visit_id INTEGER REFERENCES visits(id),
            agency TEXT NOT NULL,
            referred_on REAL NOT NULL,
            referred_by TEXT NOT NULL,
            consent INTEGER NOT NULL,          -- the family consented (1) or not (0)
            follow_up_on REAL,                 -- a reminder goes to referred_by on this day
            follow_up_reminded_at REAL,
            notes TEXT,
            logged_at REAL NOT NULL,
            purged_at REAL
        );
        CREATE INDEX referrals_visit ON referrals(visit_id);
        CREATE INDEX referrals_follow_up ON referrals(follow_up_on) WHERE follow_up_reminded_at IS NULL;

        -- Information passed to another member of staff (Tees Valley 4.3).
        CREATE TABLE shares (
            id INTEGER PRIMARY KEY,
            visit_id INTEGER REFERENCES visits(id),
            shared_by TEXT NOT NULL,
            shared_with TEXT NOT NULL,
            shared_at REAL NOT NULL,
            why TEXT NOT NULL,
            logged_at REAL NOT NULL,
            purged_at REAL
        );
        CREATE INDEX shares_visit ON shares(visit_id);

        -- Vulnerable Children's Meetings held (Tees Valley): each starts the next period.
        CREATE TABLE meetings (
            id INTEGER PRIMARY KEY,
            held_at REAL NOT NULL,
            marked_by TEXT NOT NULL
        );

        -- The register keeps its history: what it was set on (for people to read), and who cleared it, when, why.
        ALTER TABLE register ADD COLUMN label TEXT;
        ALTER TABLE register ADD COLUMN cleared_by TEXT;
        ALTER TABLE register ADD COLUMN clear_note TEXT;
        ALTER TABLE register ADD COLUMN visit_id INTEGER;   -- the visit whose outcome set it, if any
        CREATE INDEX register_open ON register(created_at) WHERE cleared_at IS NULL;

        -- A drill (issue 15): a marked test visit that runs the real ladder and never counts as a real event.
        ALTER TABLE visits ADD COLUMN drill INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations(name="0021_perf_indexes")
def _perf_indexes(db: Database) -> None:
    db.executescript(
        """
        -- Visits out now, with every column the board prints, who is on them and the drill mark: the board's live rows and
        -- "which visit is this person out on" (every /out, /checkin, /back) read this small index, not the rows.
        CREATE INDEX IF NOT EXISTS visits_live ON visits(start_at, id, requester, companions, state, expected_return,
            returned_at, returned_home, departed_at, drill) WHERE state IN ('out', 'overdue', 'emergency');
        -- A person's visits in a state, in start order: without the start time the planner preferred the state
        -- index for its order, and read every approved visit of the school to find one person's.
        CREATE INDEX IF NOT EXISTS visits_requester_state_start ON visits(requester, state, start_at);
        -- A day's visits with who is on them: a person's own board finds their visits of the day in the index.
        CREATE INDEX IF NOT EXISTS visits_day ON visits(start_at, requester, companions, drill);
        """
    )


@migrations(name="0022_drills")
def _drills(db: Database) -> None:
    """Ladder drills (issue 15): the run, each drill message the ladder sent, and who acknowledged which, when.

    The drill visit itself is a row of `visits` with drill = 1; its messages are ordinary outbox rows (by key).
    """
    db.executescript(
        """
        CREATE TABLE drills (
            visit_id INTEGER PRIMARY KEY REFERENCES visits(id),
            started_by TEXT NOT NULL,
            started_at REAL NOT NULL,
            factor INTEGER NOT NULL,           -- times compressed by this: 60 = a minute of the ladder in a second
            window_s REAL NOT NULL,            -- after the last tier, how long acknowledgements are awaited
            ended_at REAL,
            stopped_by TEXT                    -- who stopped it early (NULL: it ran through every tier)
        );
        CREATE INDEX drills_running ON drills(started_at) WHERE ended_at IS NULL;

        -- One row per message a drill tier queued: its button carries this id, so an answer names its message.
        CREATE TABLE drill_messages (
            id INTEGER PRIMARY KEY,
            visit_id INTEGER NOT NULL REFERENCES visits(id),
            tier INTEGER NOT NULL,
            target TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,          -- the outbox row's key
            queued_at REAL NOT NULL
        );
        CREATE INDEX drill_messages_visit ON drill_messages(visit_id);

        CREATE TABLE drill_acks (
            message_id INTEGER NOT NULL REFERENCES drill_messages(id),
            user TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (message_id, user)
        );
        """
    )


@migrations(name="0020_exports")
def _exports(db: Database) -> None:
    db.executescript(
        """
        -- A file made for one person (an export, a report) where the platform cannot take an upload (Google Chat):
        -- fetched once through a link with a secret (only its hash is kept), deleted when fetched or expired.
        CREATE TABLE downloads (
            token_hash TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            body BLOB NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX downloads_expiry ON downloads(expires_at);
        """
    )


@migrations(name="0023_notify_sos")
def _notify_sos(db: Database) -> None:
    """Texts on standby (issue 15): the wake-up plans for them and the sweep arms them without reading every old row."""
    db.executescript("CREATE INDEX outbox_standby ON outbox(created_at) WHERE status = 'standby';")


@migrations(name="0017_outcomes")
def _outcomes(db: Database) -> None:
    """The outcome asked of each visit after /back, and its one reminder (issue 14 item 1)."""
    db.executescript(
        """
        -- One row per finished visit: whom the outcome was asked of, and the one reminder if none comes.
        CREATE TABLE outcome_asks (
            visit_id INTEGER PRIMARY KEY REFERENCES visits(id),
            visitor TEXT NOT NULL,             -- user id asked (and reminded)
            asked_at REAL NOT NULL,
            remind_at REAL NOT NULL,           -- asked_at + one hour
            reminded_at REAL                   -- the reminder was queued (once)
        );
        CREATE INDEX outcome_asks_due ON outcome_asks(remind_at) WHERE reminded_at IS NULL;
        """
    )


@migrations(name="0025_purge_indexes")
def _purge_indexes(db: Database) -> None:
    db.executescript(
        """
        -- Retention of the back half of a visit runs every tick: each table's text not yet purged, by age, from an index.
        CREATE INDEX IF NOT EXISTS concerns_unpurged ON concerns(raised_at) WHERE purged_at IS NULL;
        CREATE INDEX IF NOT EXISTS referrals_unpurged ON referrals(logged_at) WHERE purged_at IS NULL;
        CREATE INDEX IF NOT EXISTS shares_unpurged ON shares(logged_at) WHERE purged_at IS NULL;
        CREATE INDEX IF NOT EXISTS register_cleared ON register(cleared_at) WHERE cleared_at IS NOT NULL;
        """
    )


@migrations(name="0027_after_gaps")
def _after_gaps(db: Database) -> None:
    db.executescript(
        """
        -- The wake-up asks each tick for the next CPOMS deadline still to tell the DSL of: from an index, never the table.
        CREATE INDEX IF NOT EXISTS records_escalation ON records(due_at) WHERE recorded_at IS NULL AND escalated_at IS NULL;
        """
    )
