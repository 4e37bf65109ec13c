/*
 * antireplay.pml: the router's anti-replay rule (GBCS section 7 as the
 * project's security notes state it) together with its group commit, its
 * at-least-once outbox forwarder, a lossy and duplicating link, a reference
 * meter and router crashes. See doc.go in this folder for what the model
 * proves and what it does not, and docs/decisions/005-anti-replay-model.md
 * for the figures.
 *
 * One originator, one target meter: one (originator, target) pair. The
 * submissions, by slot (CTR gives each slot's counter):
 *
 *   0  A   counter 1   round 1, grouped with B
 *   1  B   counter 2   round 1
 *   2  R   counter 2   round 2: a replay of B's counter
 *   3  C   counter 3   round 2
 *   4..7               the resubmission of slot 0..3, same counter, sent once
 *                      by a caller that was told "unavailable"
 *
 * Switches (spin -DNAME):
 *   BROKEN     the router advances its in-memory counter when a command
 *              passes the pre-check, before the group commits
 *              (antireplay_broken.pml sets it)
 *   UNORDERED  the forwarder takes any undelivered command, not the
 *              oldest of the pair (a second wrong variant: commands get lost)
 *   WITNESS=n  non-vacuity: the final check fails if the run reached
 *              situation n (see the end of Router); spin must find one
 *   MAXG=1     one command per group: with one pair, the rule "at most one
 *              command per (originator, target) pair in a group"
 *   CONCURRENT each command passes the pre-check as soon as it arrives (in
 *              its caller's goroutine), while a group may be committing;
 *              without it, the commands that arrived are pre-checked
 *              together while the committer is idle
 *   LIVENESS   adds the LTL property "eventually the router is done and
 *              every accepted command was executed once" (compile pan
 *              without -DSAFETY, run it with -a)
 *   CRASHES, FAILS, LOSSES, DUPS, EARLY: the fault budgets below
 *
 * A group takes what is queued, up to MAXG commands; the callers send A
 * and B together, and then R, C and any resubmissions, so groups of two
 * to four commands of the pair form (and of one in the third round, or
 * after a crash).
 */

/* Fault budgets: at most this many of each in one run. */
#ifndef CRASHES
#define CRASHES 2 /* router restarts, at any point of its work */
#endif
#ifndef FAILS
#define FAILS 1 /* group transactions that fail without a crash */
#endif
#ifndef LOSSES
#define LOSSES 1 /* messages lost on the link, either way */
#endif
#ifndef DUPS
#define DUPS 1 /* messages the link delivers twice */
#endif
#ifndef EARLY
#define EARLY 1 /* leases that expire while the message or its answer is on its way */
#endif

#define NS 8   /* submission slots */
#ifndef MAXG
#define MAXG 4 /* most commands in one group */
#endif

/* Each slot's counter: A 1, B 2, R 2, C 3; a resubmission repeats its original's. */
#define CTR(s) ((((s) % 4) == 0) -> 1 : ((((s) % 4) == 3) -> 3 : 2))

/* Each slot's name, for the trail: A, B, R, C, and A' ... C' for a resubmission. */
#define NAME(s) ((((s) % 4) == 0) -> 'A' : ((((s) % 4) == 1) -> 'B' : ((((s) % 4) == 2) -> 'R' : 'C')))
inline nm(s) {
	printf("%c", NAME(s));
	if
	:: s >= 4 -> printf("'")
	:: else -> skip
	fi
}

/* What a caller is told. */
#define NONE 0
#define ACCEPTED 1    /* durable: the group committed */
#define REPLAY 2      /* refused: counter not above the last recorded */
#define UNAVAILABLE 3 /* no answer: a failed transaction, or a crash */

/* The durable store: it survives a crash. */
byte db_last;       /* router_counters.last for the pair; 0 = none yet */
bool committed[NS]; /* router_commands has the slot's row */
bool outbox[NS];    /* router_outbox has the slot's row: not yet delivered */

/* The router's memory: a crash wipes it. */
byte mem_last;      /* the last counter of the pair, as the pre-check sees it */
byte grp[MAXG];     /* the group being committed */
byte gres[MAXG];    /* each member's outcome in the committed transaction */
byte gn;            /* its size */
byte cphase;        /* committer: 0 idle, 1 group formed, 2 committed, 3 telling */
byte ti;            /* next member to be told */
bool busy;          /* forwarder: an attempt is in progress ... */
bool acked;         /* ... and the transport acknowledged it */
byte cur;           /* ... for this slot */
chan inq = [NS] of { byte };  /* submissions not yet pre-checked */
chan subq = [NS] of { byte }; /* pre-checked, queued for a group */

/* The link: outstanding messages and answers never exceed 2 in all. */
chan toMeter = [2] of { byte };
chan fromMeter = [2] of { byte, bool }; /* slot; executed, or refused as a replay (ErrDeviceReplay) */

/* The meter. */
byte meter_last;    /* the last counter it executed from the originator */
byte exec[NS];      /* how many times it executed each slot */
bool ran[4];        /* counters it executed */

/* The callers. */
byte told[NS];
bool client_done;

/* What happened, for WITNESS runs only. */
bool devreplay_seen; /* the meter refused a command sent again */

byte crashes = CRASHES;
byte fails = FAILS;
byte losses = LOSSES;
byte dups = DUPS;
byte early = EARLY;

bool router_done;

/* accepted, replay and unavailable answer the caller of slot s, each
 * checking that its answer is true. */
inline accepted(s) {
	told[s] = ACCEPTED;
	printf("caller of ");
	nm(s);
	printf(" told accepted\n");
	/* "accepted" only for a committed command */
	assert(committed[s])
}

inline replay(s) {
	told[s] = REPLAY;
	printf("caller of ");
	nm(s);
	printf(" told replay (store %d, memory %d)\n", db_last, mem_last);
	/* a refusal as a replay only when a command with a counter at least
	 * as great was accepted, and never of a command that is itself
	 * recorded */
	assert(db_last >= CTR(s) && !committed[s])
}

inline unavailable(s) {
	told[s] = UNAVAILABLE;
	printf("caller of ");
	nm(s);
	printf(" told unavailable\n")
}

/* precheck refuses slot s as a replay if its counter is not above the
 * in-memory one, or queues it for a group. */
inline precheck(s) {
	if
	:: CTR(s) <= mem_last -> replay(s)
	:: else ->
		subq!s;
		printf("pre-check passes ");
		nm(s);
#ifdef BROKEN
		mem_last = CTR(s); /* advanced before the commit */
#endif
		printf(" (memory %d)\n", mem_last)
	fi
}

/* form takes up to MAXG pre-checked commands (at least one) as the next
 * group. */
inline form() {
	do
	:: gn < MAXG && nempty(subq) -> subq?grp[gn]; gn++
	:: gn >= MAXG || empty(subq) -> break
	od;
	cphase = 1
}

/* head sets cur to the slot the forwarder takes next: the oldest (lowest
 * counter) undelivered command of the pair; with UNORDERED, any. No
 * command in the outbox leaves cur at NS. */
inline head() {
	cur = NS;
	i = 0;
	do
	:: i < NS ->
		if
		:: outbox[i] && (cur == NS || CTR(i) < CTR(cur)) -> cur = i
#ifdef UNORDERED
		:: outbox[i] -> cur = i
#endif
		:: else -> skip
		fi;
		i++
	:: else -> break
	od
}

/* send puts slot cur on the link, which may lose it or deliver it twice. */
inline send() {
	if
	:: toMeter!cur
	:: losses > 0 -> losses--; printf("link loses it\n")
	:: dups > 0 && len(toMeter) + len(fromMeter) == 0 -> dups--; toMeter!cur; toMeter!cur; printf("link duplicates it\n")
	fi
}

#define outboxEmpty (!outbox[0] && !outbox[1] && !outbox[2] && !outbox[3] && \
	!outbox[4] && !outbox[5] && !outbox[6] && !outbox[7])

/* The router: the committer and the forwarder, whose steps interleave in
 * every order, and crashes between any two steps. Each step is one change
 * of durable state (a transaction) or of what the outside sees. */
active proctype Router() {
	byte s, i, last;
	do
	/* Pre-check: each command that arrived is refused as a replay, or
	 * queued for a group. */
#ifdef CONCURRENT
	:: nempty(inq) -> atomic { inq?s; precheck(s); s = 0 }
#else
	:: cphase == 0 && nempty(inq) ->
		atomic {
			do
			:: nempty(inq) -> inq?s; precheck(s)
			:: empty(inq) -> break
			od;
			s = 0
		}
#endif
	/* Committer: what is queued forms the next group. */
	:: cphase == 0 && nempty(subq) -> atomic { form() }
	/* The group's transaction: each command's counter checked against
	 * the recorded one (strictly greater), advanced, the command and its
	 * outbox row written; one commit, or a failure that stores nothing. */
	:: cphase == 1 ->
		atomic {
			if
			:: fails > 0 ->
				fails--;
				printf("group transaction fails, nothing stored\n");
				i = 0;
				do
				:: i < gn -> unavailable(grp[i]); i++
				:: else -> break
				od;
				gn = 0;
				cphase = 0
			:: true ->
				last = db_last;
				i = 0;
				do
				:: i < gn ->
					s = grp[i];
					if
					:: CTR(s) > last ->
						last = CTR(s);
						committed[s] = true;
						outbox[s] = true;
						gres[i] = ACCEPTED
					:: else -> gres[i] = REPLAY
					fi;
					i++
				:: else -> break
				od;
				db_last = last;
				printf("group commits (store %d)\n", db_last);
				cphase = 2
			fi;
			i = 0;
			s = 0;
			last = 0
		}
	/* After the commit, memory catches up... */
	:: cphase == 2 ->
		atomic {
#ifndef BROKEN
			mem_last = db_last;
#endif
			printf("memory %d\n", mem_last);
			ti = 0;
			cphase = 3
		}
	/* ... and then the callers are told, one at a time. */
	:: cphase == 3 && ti < gn ->
		atomic {
			if
			:: gres[ti] == ACCEPTED -> accepted(grp[ti])
			:: else -> replay(grp[ti])
			fi;
			ti++;
			if
			:: ti == gn -> gn = 0; ti = 0; cphase = 0
			:: else -> skip
			fi
		}
	/* Forwarder: claim the pair's oldest undelivered command and send it. */
	:: !busy && !outboxEmpty && len(toMeter) + len(fromMeter) < 2 ->
		atomic {
			head();
			i = 0;
			busy = true;
			printf("forwarder sends ");
			nm(cur);
			printf("\n");
			send()
		}
	/* An answer from the meter: for the command being forwarded (from
	 * this attempt or an earlier one: either way the meter has seen it),
	 * or a stale one, ignored. */
	:: nempty(fromMeter) ->
		atomic {
			fromMeter?s, last;
			if
			:: busy && !acked && s == cur -> acked = true
			:: else -> skip
			fi;
			s = 0;
			last = 0
		}
	/* No answer: the attempt failed, it is retried. Either nothing is on
	 * its way any more (lost), or the lease expired early. */
	:: busy && !acked && empty(toMeter) && empty(fromMeter) ->
		atomic { busy = false; printf("no answer: retry\n") }
	:: busy && !acked && early > 0 ->
		atomic { early--; busy = false; printf("lease expires early: retry\n") }
	/* Acknowledged: the outbox row goes, in a later transaction. */
	:: busy && acked ->
		atomic {
			outbox[cur] = false;
			busy = false;
			acked = false;
			printf("outbox row of ");
			nm(cur);
			printf(" deleted\n")
		}
	/* Done: every caller answered, nothing left to deliver. */
	:: client_done && cphase == 0 && empty(inq) && empty(subq) && !busy && outboxEmpty &&
	   empty(toMeter) && empty(fromMeter) -> break
	/* Crash and restart: memory is lost and rebuilt from the store; the
	 * callers still waiting (queued, in the group, committed but not yet
	 * told) hear "unavailable". */
	:: crashes > 0 ->
		atomic {
			crashes--;
			printf("router crashes and restarts\n");
			i = 0;
			do
			:: i < gn ->
				if
				:: told[grp[i]] == NONE -> unavailable(grp[i])
				:: else -> skip
				fi;
				i++
			:: else -> break
			od;
			do
			:: nempty(inq) -> inq?s; unavailable(s)
			:: empty(inq) -> break
			od;
			do
			:: nempty(subq) -> subq?s; unavailable(s)
			:: empty(subq) -> break
			od;
			gn = 0;
			ti = 0;
			cphase = 0;
			busy = false;
			acked = false;
			mem_last = db_last;
			i = 0;
			s = 0
		}
	od;
	/* The end-state checks, over every slot. */
	i = 0;
	do
	:: i < NS ->
		/* No accepted command is lost: each committed command was
		 * executed by the meter, exactly once. */
		assert(!committed[i] || exec[i] == 1);
		/* A caller told "accepted" has a committed command. */
		assert(told[i] != ACCEPTED || committed[i]);
		/* A submission refused as a replay was never executed. */
		assert(told[i] != REPLAY || exec[i] == 0);
		/* Nothing is executed twice. */
		assert(exec[i] <= 1);
		i++
	:: else -> break
	od;
#ifdef WITNESS
	/* Non-vacuity: each of these situations must be reachable, so spin
	 * must report this assertion violated. */
#if WITNESS == 1
	/* a group failed, its commands were resubmitted, accepted and run */
	assert(!(told[0] == UNAVAILABLE && !committed[0] && exec[4] == 1 && exec[5] == 1))
#elif WITNESS == 2
	/* a crash after the commit: B's caller heard nothing, its
	 * resubmission was refused as a replay, and B ran once */
	assert(!(committed[1] && told[1] == UNAVAILABLE && told[5] == REPLAY && exec[1] == 1))
#elif WITNESS == 3
	/* a command was sent again (crash, early lease or duplicate) and the
	 * meter refused the second copy */
	assert(!devreplay_seen)
#elif WITNESS == 4
	/* the replay R was refused while B and C ran */
	assert(!(told[2] == REPLAY && exec[1] == 1 && exec[3] == 1))
#endif
#endif
	router_done = true
}

/* The meter: executes a command only if its counter is strictly greater
 * than the last it executed from the originator (GBCS section 7), and
 * answers either way; the answer may be lost. */
active proctype Meter() {
	byte s;
end:
	do
	:: atomic {
		toMeter?s ->
		if
		:: CTR(s) > meter_last ->
			/* only recorded commands reach the meter */
			assert(committed[s]);
			/* no counter, and so no command, runs twice */
			assert(!ran[CTR(s)]);
			ran[CTR(s)] = true;
			meter_last = CTR(s);
			exec[s]++;
			printf("meter executes ");
			nm(s);
			printf(" (counter %d)\n", meter_last);
			if
			:: fromMeter!s, true
			:: losses > 0 -> losses--; printf("link loses the answer\n")
			fi
		:: else ->
#ifdef WITNESS
			devreplay_seen = true;
#endif
			printf("meter refuses ");
			nm(s);
			printf(" as a replay (last %d)\n", meter_last);
			if
			:: fromMeter!s, false
			:: losses > 0 -> losses--; printf("link loses the answer\n")
			fi
		fi;
		s = 0
	}
	od
}

/* The callers: two rounds of two commands each (each round queued at once,
 * so it forms one group), then whatever was left unanswered is sent once
 * more; a caller told "unavailable" resubmits the same command, before
 * anything newer. */
active proctype Client() {
	atomic { inq!0; inq!1; printf("submit A (1), B (2)\n") }
	(told[0] != NONE && told[1] != NONE);
	atomic {
		if
		:: told[0] == UNAVAILABLE -> inq!4; printf("submit A' (1)\n")
		:: else -> skip
		fi;
		if
		:: told[1] == UNAVAILABLE -> inq!5; printf("submit B' (2)\n")
		:: else -> skip
		fi;
		inq!2;
		inq!3;
		printf("submit R (2), C (3)\n")
	}
	(told[2] != NONE && told[3] != NONE &&
	 (told[0] != UNAVAILABLE || told[4] != NONE) &&
	 (told[1] != UNAVAILABLE || told[5] != NONE));
	atomic {
		if
		:: told[2] == UNAVAILABLE -> inq!6; printf("submit R' (2)\n")
		:: else -> skip
		fi;
		if
		:: told[3] == UNAVAILABLE -> inq!7; printf("submit C' (3)\n")
		:: else -> skip
		fi
	}
	((told[2] != UNAVAILABLE || told[6] != NONE) &&
	 (told[3] != UNAVAILABLE || told[7] != NONE));
	client_done = true
}

#ifdef LIVENESS
#define executed(s) (!committed[s] || exec[s] == 1)
/* Every run ends with the router done and every accepted command executed
 * once. The fault budgets make every run finite, so no fairness assumption
 * is needed: a run that never got there would be a cycle, which pan -a
 * reports. */
ltl lossless {
	<> (router_done && executed(0) && executed(1) && executed(2) && executed(3) &&
	    executed(4) && executed(5) && executed(6) && executed(7))
}
#endif
