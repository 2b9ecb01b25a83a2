// Package plan holds sluice's plans: the logical plan the Dataset API builds,
// the optimizer, the physical plan, its cut into stages, and the building of
// one task's operators.
//
// In: nodes made by the Dataset API (Scan, Filter, Project, Aggregate, Join,
// Union, Sort, Limit, MapBatches, Write). Out: Stages, each a fragment of
// nodes that runs as one task per split or per shuffle partition; Build turns
// one task of a stage into a tree of exec.Operators; StatefulOperators
// (identity.go) states what each stateful operator of a streaming plan keeps
// (kind, id, key and value schemas), the facts a checkpoint pins.
//
// Invariants:
//  1. Nodes are plain data (expressions are expr.Expr trees, functions are
//     referenced by registered name); only in-memory scan records are not
//     serializable yet.
//  2. Every node's Schema is computed when it is made; Optimize and Physical
//     work on copies and re-derive schemas, so a plan is never mutated in place.
//  3. Optimize only drops work that provably cannot change the result:
//     filters keep running after the scan predicates they produce (pruning is
//     per row group), and pruning keeps every column something reads.
//  4. A stage reads either scans (one task per split) or exchanges with equal
//     partition counts (one task per partition), never both.
//  5. Shuffle inputs are read in map-task order, so reruns are deterministic.
//
// Physical shapes:
//
//	Aggregate     -> Aggregate final  <- Exchange hash(keys) <- Aggregate partial
//	Join          -> Join             <- Exchange hash(left keys), Exchange hash(right keys)
//	Sort [limit]  -> Sort             <- Exchange single     <- [Sort limit]
//	Limit         -> Limit            <- Exchange single     <- Limit
package plan
