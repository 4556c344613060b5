// Package rollback benchmarks `oops rollback` on a Classic ELB against the
// original tool's shell flip (../shared/bench/seed-rollback.sh, aws CLI and
// jq), side by side on one moto: wall time, ELB API calls, and the window
// with no listener. Run it with
//
//	go test -run '^$' -bench RollbackVsSeed -benchtime 1x ./bench/rollback/
//
// (make bench runs it with the others). OOPS_BENCH_RUNS sets the number of
// runs of each (default 5); OOPS_SEED_SCRIPT the path of the shell flip.
package rollback
