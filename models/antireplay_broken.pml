/*
 * antireplay_broken.pml: antireplay.pml with the mistake this model exists
 * to catch: the router advances its in-memory counter of the pair as soon
 * as a command passes the pre-check, before the group's transaction
 * commits. Spin must refute the model's refusal check ("a command is
 * refused as a replay only when a command with a counter at least as great
 * was accepted"); doc.go and docs/decisions/005-anti-replay-model.md give
 * the counterexample it finds.
 */
#define BROKEN 1
#include "antireplay.pml"
