// Package reconcile is the pure core of cairn's reconciler: for one key it
// decides what to do from what the node, a backend and their last synced
// state hold ([Decide]), resolves conflicting versions under a tenant's
// policy ([Resolve], [MergeJSON]) and guards against mass deletion
// ([Guard]). It does no I/O.
package reconcile
