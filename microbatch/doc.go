// Package microbatch will run a Dataset continuously as a sequence of
// micro-batches with exactly-once checkpoints (offsets write-ahead log,
// commits log, state store); see DESIGN.md "The data path". It is not built
// yet: the batch engine it reuses (dataset, plan, scheduler) comes first.
package microbatch
