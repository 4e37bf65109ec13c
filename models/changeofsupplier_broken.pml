/*
 * changeofsupplier_broken.pml: changeofsupplier.pml with the mistake this
 * model exists to catch: the router moves the meter's ownership to the new
 * supplier when it sends the CS02b supplierByTransCoS, not when the meter's
 * answer confirms it, and counts the change as settled. Spin must refute
 * property (a), "once settled, the router's owner is the supplier whose key
 * the meter holds"; doc.go and docs/decisions/014-change-of-supplier.md
 * give the counterexample it finds.
 */
#define BROKEN 1
#include "changeofsupplier.pml"
