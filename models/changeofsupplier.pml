/*
 * changeofsupplier.pml: the router's change-of-supplier state machine
 * (DUIS 6.23, CS02b supplierByTransCoS) and a supplier's own key rotation
 * (SR 6.15.1, CS02b supplierBySupplier), with the CS02a read that settles a
 * change whose outcome is unknown, a lossy, duplicating and late link, a
 * reference meter and router crashes. See doc.go in this folder for what
 * the model proves and what it does not, and
 * docs/decisions/014-change-of-supplier.md for the design and the figures.
 *
 * One meter. Two suppliers: OLD, whose key KA the meter trusts at first,
 * and NEW. OLD may rotate its key to KA2 (supplierBySupplier, signed with
 * KA); NEW asks for the change of supplier (supplierByTransCoS, signed by
 * the DCC's TCoS party), which puts its key KB in the meter's supplier
 * cells. Both send critical commands at any time; OLD also sends one
 * "another way", straight to the meter, not through the router.
 *
 * The router's ownership record (persisted): the settled key (and so the
 * owner), and at most one change: its kind, its target key, its episode
 * number (which correlates the device's answers) and whether it is pending
 * (the CS02b may be on its way; its answer is awaited) or unsettled (its
 * outcome is unknown: the router reads the meter's anchors with CS02a and
 * settles to what the meter holds). Its memory: where it is in the change's
 * exchange (CS02b to send, its answer awaited, CS02a to send, its answer
 * awaited); a crash wipes it, and the restart turns a change that is not
 * settled into an unsettled one.
 *
 * Switches (spin -DNAME):
 *   BROKEN       the router moves ownership when it sends the CS02b, not when
 *                the meter's answer confirms it, and counts the change as
 *                settled (changeofsupplier_broken.pml sets it)
 *   NOBLOCK      while a change is pending or unsettled, the router still
 *                admits the recorded owner's critical commands
 *   NOEXCL       the router starts a change while another is not settled,
 *                in its place
 *   UNCORRELATED the router settles from any CS02a answer, not only one of
 *                the current change's episode
 *   REPLAYMEANSNO the router takes a device's replay refusal of the CS02b
 *                (a copy the meter discarded) as "change not applied"
 *   ATREST       the invariant (a), (b) is checked only when nothing is on
 *                its way between router and meter (so a counterexample shows
 *                a lasting disagreement, not a message in flight)
 *   OVERTAKE     the link may deliver a CS02b after the CS02a sent behind it
 *                (commands to the meter are not delivered in order)
 *   NORETRY      the router does not read again when a CS02a or its answer
 *                is lost (a change may stay unsettled for ever)
 *   WITNESS=n    non-vacuity: the final check fails if the run reached
 *                situation n (see the end of Router); spin must find one
 *   LIVENESS     adds the LTL property "every change settles" (compile pan
 *                without -DSAFETY, run it with -a)
 *   CRASHES, LOSSES, DUPS, EARLY, REFUSALS, TRIES, CRITS: the budgets below
 */

/* Fault budgets: at most this many of each in one run. */
#ifndef CRASHES
#define CRASHES 1 /* router restarts, at any point of its work */
#endif
#ifndef LOSSES
#define LOSSES 1 /* messages lost on the link, either way */
#endif
#ifndef DUPS
#define DUPS 1 /* commands the link delivers twice */
#endif
#ifndef EARLY
#define EARLY 1 /* timeouts that fire while a command or its answer is still on its way */
#endif
#ifndef REFUSALS
#define REFUSALS 1 /* CS02b commands the meter refuses to execute (resourcesBusy) */
#endif
/* The suppliers' budgets. */
#ifndef TRIES
#define TRIES 2 /* change requests by each supplier */
#endif
#ifndef CRITS
#define CRITS 1 /* critical commands each supplier submits through the router */
#endif

/* The suppliers, and their keys: the meter's supplier cells hold one. */
#define OLD 1
#define NEW 2
#define KA 1  /* OLD's key */
#define KA2 2 /* OLD's key after its rotation */
#define KB 3  /* NEW's key */
#define SUP(k) (((k) == KB) -> NEW : OLD)

/* The ownership record's states. */
#define IDLE 0      /* settled: no change */
#define PENDING 1   /* a change is under way; its answer is awaited */
#define UNSETTLED 2 /* a change's outcome is unknown: being read back */

/* Change kinds. */
#define COS 1 /* supplierByTransCoS, asked by NEW */
#define ROT 2 /* supplierBySupplier, asked by OLD */

/* Messages to the meter: kind, episode, sequence number, key. */
#define CS02B_COS 1 /* key: the target, KB */
#define CS02B_ROT 2 /* key: the signing key; the target is KA2 */
#define CS02A 3
#define CRIT 4 /* a critical command; key: the sending supplier */
/* Answers from the meter: kind, episode, value. */
#define R_CS02B 1 /* value: one of the outcomes below */
#define R_CS02A 2 /* value: the key in the supplier cells */
#define APPLIEDB 1 /* executed: the cells now hold the target key */
#define REFUSEDB 2 /* executed and refused: the cells are unchanged */
#define REPLAYB 3  /* discarded as a replay: says nothing of the outcome */

/* What a supplier is told. */
#define NONE 0
#define STARTED 1        /* a change request accepted: under way */
#define CHANGE_PENDING 2 /* refused: another change is not settled (change-pending) */
#define NOT_OWNER 3      /* refused: not the device's supplier (not-owner) */
#define UNSETTLED_R 4    /* a critical command refused: ownership not settled (ownership-unsettled) */
#define ACCEPTED 5       /* a critical command accepted and forwarded */
#define APPLIED 6        /* the change is done: confirmed, or read back */
#define REFUSED 7        /* the meter refused the change: ownership as it was */
#define NOT_APPLIED 8    /* read back: the change did not happen */
#define ALREADY 9        /* refused: nothing to change */

/* The durable store: it survives a crash. */
byte db_key = KA;     /* the settled key in the meter's supplier cells, as the router knows it */
byte db_state = IDLE; /* IDLE, PENDING or UNSETTLED */
byte db_kind;         /* the change: COS or ROT */
byte db_target;       /* its target key */
byte db_ep;           /* its episode number */
byte db_seq;          /* the authorising party's sequence number it carries */

/* The router's memory: a crash wipes it. */
byte phase; /* 0 nothing to do, 1 CS02b to send, 2 its answer awaited, 3 CS02a to send, 4 its answer awaited */

/* The link. Commands to the meter in order (but with OVERTAKE), answers
 * back in order; outstanding messages never exceed 2 each way. */
chan toMeter = [2] of { byte, byte, byte, byte };
chan fromMeter = [2] of { byte, byte, byte };

/* The requests to the router: what (CRIT, COS, ROT), who. */
chan req = [4] of { byte, byte };

/* The meter: its supplier cells and the authorising parties' sequence
 * numbers (TCoS and supplier), advanced by every CS02b that passes the
 * meter's checks, executed or refused. */
byte m_key = KA;
byte m_tseq;
byte m_sseq;
byte executed[3]; /* critical commands executed, by supplier */
byte mrefused[3]; /* critical commands refused as from a supplier not trusted */

/* The suppliers. */
byte cos_told; /* NEW's last change request */
byte rot_told; /* OLD's last change request */
byte crit_told[3];
bool new_done, old_done;

byte crashes = CRASHES;
byte losses = LOSSES;
byte dups = DUPS;
byte early = EARLY;
byte refusals = REFUSALS;

bool router_done;

/* What happened, for WITNESS runs only (seen records it). */
#ifdef WITNESS
#define seen(v, c) if :: (c) -> v = true :: else -> skip fi
#else
#define seen(v, c) skip
#endif
bool read_settled;      /* a change settled through the CS02a read */
bool answer_lost;       /* the link lost an answer of the meter */
bool late_answer;       /* a CS02b answer came after the router timed out */
bool cos_waited;        /* NEW was told change-pending */
bool old_notowner;      /* OLD was refused by the router as not the owner */
bool unsettled_refused; /* a critical command was refused while a change was unsettled */
bool crash_unsettled;   /* a restart found a change not settled */

/* The router admits supplier x's critical commands; the meter trusts x. */
#ifdef NOBLOCK
#define admits(x) (SUP(db_key) == (x))
#else
#define admits(x) (db_state == IDLE && SUP(db_key) == (x))
#endif
#define trusts(x) (SUP(m_key) == (x))

/* A change may start: nothing else is under way (with NOEXCL, always). */
#ifdef NOEXCL
#define free true
#else
#define free (db_state == IDLE)
#endif

/* invariant states the safety properties; every step that changes the
 * router's record or the meter's cells ends with it. */
#ifdef ATREST
#define rest (len(toMeter) == 0 && len(fromMeter) == 0)
#else
#define rest true
#endif
inline invariant() {
	/* (a) once settled, the router's key, and so its owner, is the one
	 * the meter holds */
	assert(!rest || db_state != IDLE || db_key == m_key);
	/* (b) the router admits the critical commands only of the supplier
	 * the meter trusts: never of both, never of one the meter refuses */
	assert(!rest || !admits(OLD) || trusts(OLD));
	assert(!rest || !admits(NEW) || trusts(NEW))
}

/* settle ends the change: the record goes back to IDLE with key k, and
 * its requester is told t. */
inline settle(k, t) {
	printf("router settles: key %d -> %d (owner %d -> %d), told %d\n", db_key, k, SUP(db_key), SUP(k), t);
	db_key = k;
	db_state = IDLE;
	if
	:: db_kind == COS -> cos_told = t
	:: else -> rot_told = t
	fi;
	phase = 0
}

/* unsettle: the outcome is unknown; the router reads the meter's cells. */
inline unsettle() {
	db_state = UNSETTLED;
	phase = 3;
	printf("router: change %d unsettled, reads the meter\n", db_ep)
}

/* send puts a command on the link, which may lose it or deliver it twice. */
inline send(kind, ep, seq, key) {
	if
	:: toMeter!kind, ep, seq, key
	:: losses > 0 -> losses--; printf("link loses it\n")
	:: dups > 0 && empty(toMeter) -> dups--; toMeter!kind, ep, seq, key; toMeter!kind, ep, seq, key; printf("link duplicates it\n")
	fi
}

#define quiet (empty(toMeter) && empty(fromMeter))

/* The router: requests, the change's exchange with the meter, timeouts
 * and crashes, interleaved in every order. Each step is one change of
 * durable state (a transaction) or of what the outside sees. */
active proctype Router() {
	byte a, b;
	do
	/* A request: a critical command, or a change. */
	:: atomic {
		nempty(req) && nfull(toMeter) ->
			req?a, b; /* what, who */
			if
			:: a == CRIT ->
				if
				:: admits(b) ->
					crit_told[b] = ACCEPTED;
					toMeter!CRIT, 0, 1, b;
					printf("router forwards a critical command of %d\n", b)
				:: !admits(b) && db_state != IDLE ->
					crit_told[b] = UNSETTLED_R;
					seen(unsettled_refused, db_state == UNSETTLED);
					printf("router refuses a critical command of %d: ownership unsettled\n", b)
				:: else ->
					/* not-owner only when settled, for the other supplier */
					assert(db_state == IDLE && SUP(db_key) != b);
					crit_told[b] = NOT_OWNER;
					printf("router refuses a critical command of %d: not owner\n", b)
				fi
			:: else ->
				/* (d) a change while another is not settled is refused */
				if
				:: !free ->
					if
					:: b == NEW -> cos_told = CHANGE_PENDING; seen(cos_waited, true)
					:: else -> rot_told = CHANGE_PENDING
					fi;
					printf("router refuses a change by %d: change pending\n", b)
				:: free && a == COS && SUP(db_key) == NEW ->
					cos_told = ALREADY
				:: free && a == ROT && SUP(db_key) != OLD ->
					rot_told = NOT_OWNER;
					seen(old_notowner, true);
					printf("router refuses a rotation by %d: not owner\n", b)
				:: free && a == ROT && db_key == KA2 ->
					rot_told = ALREADY
				:: free && ((a == COS && SUP(db_key) == OLD) || (a == ROT && db_key == KA)) ->
					/* one transaction: the change, its episode and
					 * sequence number, before anything is sent */
					db_state = PENDING;
					db_kind = a;
					db_ep++;
					db_seq++;
					if
					:: a == COS -> db_target = KB; cos_told = STARTED
					:: else -> db_target = KA2; rot_told = STARTED
					fi;
					phase = 1;
					printf("router records change %d by %d: key %d -> %d\n", db_ep, b, db_key, db_target)
				fi
			fi;
			invariant();
			a = 0;
			b = 0
		}
	/* Send the CS02b. */
	:: atomic {
		phase == 1 && nfull(toMeter) ->
			printf("router sends the CS02b of change %d\n", db_ep);
			if
			:: db_kind == COS -> send(CS02B_COS, db_ep, db_seq, KB)
			:: else -> send(CS02B_ROT, db_ep, db_seq, db_key)
			fi;
#ifdef BROKEN
			/* moved on sending, and counted as settled */
			settle(db_target, APPLIED);
			invariant();
#else
			phase = 2
#endif
		}
	/* The CS02b's answer: the meter's outcome settles the change; a
	 * replay refusal says nothing of it. Answers of other episodes are
	 * stale. */
	:: atomic {
		fromMeter?[R_CS02B, a, b] ->
			fromMeter?R_CS02B, a, b;
			if
			:: db_state != IDLE && a == db_ep && b == APPLIEDB ->
				seen(late_answer, phase != 2);
				settle(db_target, APPLIED)
			:: db_state != IDLE && a == db_ep && b == REFUSEDB ->
				seen(late_answer, phase != 2);
				settle(db_key, REFUSED)
#ifdef REPLAYMEANSNO
			:: db_state != IDLE && a == db_ep && b == REPLAYB ->
				settle(db_key, NOT_APPLIED)
#else
			:: db_state == PENDING && a == db_ep && b == REPLAYB ->
				printf("device reports a replay: outcome unknown\n");
				unsettle()
#endif
			:: else -> printf("router ignores a stale CS02b answer (%d)\n", a)
			fi;
			invariant();
			a = 0;
			b = 0
		}
	/* The CS02a's answer: the change settles to what the meter holds. */
	:: atomic {
		fromMeter?[R_CS02A, a, b] ->
			fromMeter?R_CS02A, a, b;
			if
#ifdef UNCORRELATED
			:: db_state == UNSETTLED ->
#else
			:: db_state == UNSETTLED && a == db_ep ->
#endif
				seen(read_settled, true);
				printf("router reads key %d\n", b);
				/* the meter holds the old key or the change's target */
				assert(b == db_key || b == db_target);
				if
				:: b == db_target -> settle(b, APPLIED)
				:: else -> settle(b, NOT_APPLIED)
				fi
			:: else -> printf("router ignores a stale CS02a answer (%d)\n", a)
			fi;
			invariant();
			a = 0;
			b = 0
		}
	/* No answer in time: nothing is on its way any more (lost), or the
	 * timeout fired early. */
	:: atomic {
		phase == 2 && (quiet || early > 0) ->
			if
			:: quiet -> printf("no answer to the CS02b: ")
			:: early > 0 -> early--; printf("timeout fires early: ")
			fi;
			unsettle()
		}
	/* Read the meter's supplier cells. */
	:: atomic {
		phase == 3 && nfull(toMeter) ->
			printf("router sends a CS02a for change %d\n", db_ep);
			send(CS02A, db_ep, 0, 0);
			phase = 4
		}
#ifndef NORETRY
	:: atomic {
		phase == 4 && (quiet || early > 0) ->
			if
			:: quiet -> printf("no answer to the CS02a: read again\n")
			:: early > 0 -> early--; printf("timeout fires early: read again\n")
			fi;
			phase = 3
		}
#endif
	/* Done: both suppliers finished, nothing under way. */
	:: new_done && old_done && db_state == IDLE && empty(req) && quiet -> break
	/* Crash and restart: memory is lost; a change not settled becomes
	 * unsettled, and is read back. */
	:: atomic {
		crashes > 0 ->
			crashes--;
			printf("router crashes and restarts\n");
			if
			:: db_state != IDLE -> seen(crash_unsettled, true); unsettle()
			:: else -> phase = 0
			fi;
			invariant()
		}
	od;
	/* The end-state checks. */
	assert(db_key == m_key);
	assert(cos_told != STARTED && rot_told != STARTED);
#ifdef WITNESS
	/* Non-vacuity: each of these situations must be reachable, so spin
	 * must report this assertion violated. */
#if WITNESS == 1
	/* an answer was lost; the change settled through the CS02a read, done */
	assert(!(answer_lost && read_settled && m_key == KB && cos_told == APPLIED))
#elif WITNESS == 2
	/* the rotation raced the change: NEW was told change-pending, then
	 * both the rotation and the change happened */
	assert(!(cos_waited && rot_told == APPLIED && m_key == KB && cos_told == APPLIED))
#elif WITNESS == 3
	/* the meter refused the change; ownership stayed with OLD */
	assert(!(cos_told == REFUSED && m_key != KB && db_key != KB && old_done && new_done))
#elif WITNESS == 4
	/* a late CS02b answer, after the timeout, settled the change */
	assert(!late_answer)
#elif WITNESS == 5
	/* after the change, OLD was refused by the router (not owner) and by
	 * the meter (not in its anchors) */
	assert(!(old_notowner && mrefused[OLD] > 0))
#elif WITNESS == 6
	/* a critical command was refused while the change was unsettled */
	assert(!unsettled_refused)
#elif WITNESS == 7
	/* a restart found the change pending; the read settled it as done */
	assert(!(crash_unsettled && read_settled && cos_told == APPLIED))
#endif
#endif
	router_done = true
}

/* The meter: a CS02b executes only if its authorising party's sequence
 * number is above the last (a copy is discarded as a replay), and for
 * supplierBySupplier only if signed with the key in the supplier cells;
 * it answers a CS02a with its cells; it executes a critical command only
 * of the supplier it trusts. Answers may be lost. */
active proctype Meter() {
	byte k, e, s, x, r;
#ifdef OVERTAKE
	byte hk, he, hs, hx;
#endif
end:
	do
	:: atomic {
		nfull(fromMeter) && nempty(toMeter) ->
#ifdef OVERTAKE
		/* the message behind a CS02b may overtake it */
		toMeter?k, e, s, x;
		if
		:: (k == CS02B_COS || k == CS02B_ROT) && nempty(toMeter) ->
			hk = k; he = e; hs = s; hx = x;
			toMeter?k, e, s, x;
			toMeter!hk, he, hs, hx;
			hk = 0; he = 0; hs = 0; hx = 0;
			printf("link: a command overtakes the CS02b\n")
		:: true
		fi;
#else
		toMeter?k, e, s, x;
#endif
		if
		:: k == CS02B_COS && s > m_tseq ->
			m_tseq = s;
			if
			:: refusals > 0 -> refusals--; r = REFUSEDB; printf("meter refuses the CS02b (busy)\n")
			:: true ->
				/* (d) the meter applies only the change the router awaits */
				assert(db_state != IDLE && e == db_ep);
				m_key = KB;
				m_sseq = 0; /* the new supplier's floor */
				r = APPLIEDB;
				printf("meter: supplier cells now hold %d\n", m_key)
			fi
		:: k == CS02B_ROT && x == m_key && s > m_sseq ->
			m_sseq = s;
			if
			:: refusals > 0 -> refusals--; r = REFUSEDB; printf("meter refuses the CS02b (busy)\n")
			:: true ->
				assert(db_state != IDLE && e == db_ep);
				m_key = KA2;
				r = APPLIEDB;
				printf("meter: supplier cells now hold %d\n", m_key)
			fi
		:: (k == CS02B_COS && s <= m_tseq) || (k == CS02B_ROT && x == m_key && s <= m_sseq) ->
			r = REPLAYB;
			printf("meter discards a CS02b copy as a replay\n")
		:: k == CS02B_ROT && x != m_key ->
			printf("meter discards a CS02b signed with a key it does not hold\n")
		:: k == CS02A -> skip
		:: k == CRIT ->
			/* (b) a critical command the router admitted is never
			 * refused by the meter as from a supplier it does not trust */
			assert(s == 0 || trusts(x));
			if
			:: trusts(x) -> executed[x]++; printf("meter executes a critical command of %d\n", x)
			:: else -> mrefused[x]++; printf("meter refuses a critical command of %d: not trusted\n", x)
			fi
		fi;
		invariant();
		if
		:: k == CS02A || r != 0 ->
			if
			:: k == CS02A -> fromMeter!R_CS02A, e, m_key
			:: else -> fromMeter!R_CS02B, e, r
			fi
		:: (k == CS02A || r != 0) && losses > 0 ->
			losses--;
			seen(answer_lost, true);
			printf("link loses the answer\n")
		:: else -> skip
		fi;
		k = 0; e = 0; s = 0; x = 0; r = 0
	}
	od
}

/* NEW asks for the change until it is done, up to TRIES times, and sends
 * critical commands at any time. */
active proctype New() {
	byte tries = TRIES, crits = CRITS;
	do
	:: atomic {
		tries > 0 && nfull(req) && (cos_told == NONE || cos_told == CHANGE_PENDING || cos_told == REFUSED || cos_told == NOT_APPLIED) -> tries--; cos_told = NONE; req!COS, NEW; printf("NEW asks for the change\n") };
		(cos_told != NONE && cos_told != STARTED)
	:: atomic { crits > 0 && nfull(req) -> crits--; req!CRIT, NEW }
	:: cos_told == APPLIED || cos_told == ALREADY || tries == 0 -> break
	od;
	new_done = true
}

/* OLD rotates its key once (again if told change-pending), sends
 * critical commands, and one straight to the meter. */
active proctype Old() {
	byte tries = TRIES, crits = CRITS;
	bool direct = true;
	do
	:: atomic {
		tries > 0 && nfull(req) && (rot_told == NONE || rot_told == CHANGE_PENDING) -> tries--; rot_told = NONE; req!ROT, OLD; printf("OLD asks to rotate its key\n") };
		(rot_told != NONE && rot_told != STARTED)
	:: atomic { crits > 0 && nfull(req) -> crits--; req!CRIT, OLD }
	:: atomic { direct && nfull(toMeter) -> direct = false; toMeter!CRIT, 0, 0, OLD; printf("OLD sends a critical command straight to the meter\n") }
	:: (tries == 0 || (rot_told != NONE && rot_told != CHANGE_PENDING)) && !direct -> break
	od;
	old_done = true
}

#ifdef LIVENESS
/* Every change settles: whenever one is under way, the record is later
 * settled. The budgets make every run finite, so no fairness assumption
 * is needed: a run that never settles would be a cycle, or would end
 * unsettled (spin treats an ending run as stuttering), and pan -a reports
 * both. */
ltl settles { [] (db_state != IDLE -> <> (db_state == IDLE)) }
#endif
