#!/usr/bin/env bash
# Query speed on a large run database: 10,000 runs with 500 epochs of 5
# training metrics each (25 million metric rows), generated with sqlite3.
# Prints the median wall time of each command over REPEATS calls.
#
# usage: tools/bench/query_bench.sh [BUILD_DIR] [RUNS] [EPOCHS] [REPEATS]
set -euo pipefail
build="${1:-build}"
runs="${2:-10000}"
epochs="${3:-500}"
repeats="${4:-11}"
bin="$(cd "$build" && pwd)/pipeline"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

# Let the tool create its schema (report on a new root opens it for writing;
# the sweep it asks for does not exist yet, which is expected).
"$bin" --root "$root" report none >/dev/null 2>&1 || true

echo "generating $runs runs x $epochs epochs x 5 metrics in $root/pipeline.db ..."
start=$(date +%s)
sqlite3 "$root/pipeline.db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
CREATE TEMP TABLE n(i INTEGER PRIMARY KEY);
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < max($runs, $epochs) - 1)
INSERT INTO n SELECT i FROM c;
INSERT INTO runs (id, config, status, created, seconds)
  SELECT printf('%012x', i * 2654435761 % 281474976710656), 'generated',
         CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'done' END, '2026-01-01T00:00:00Z', 60 + i % 900
  FROM n WHERE i < $runs;
INSERT INTO sweeps (name, file, description, created, updated)
  VALUES ('bench', 'generated.yaml', 'query benchmark', '', '');
INSERT INTO sweep_runs (sweep, run, position) SELECT 'bench', id, rowid FROM runs;
CREATE TEMP TABLE r AS SELECT id, rowid - 1 AS i FROM runs;
INSERT INTO params (run, key, value, num)
  SELECT id, 'model.width', 256 << (i % 5), 256 << (i % 5) FROM r;
INSERT INTO params (run, key, value, num) SELECT id, 'model.depth', 1 + i % 4, 1 + i % 4 FROM r;
INSERT INTO params (run, key, value, num)
  SELECT id, 'train.lr', 0.001 * (1 + i % 3), 0.001 * (1 + i % 3) FROM r;
INSERT INTO params (run, key, value, num) SELECT id, 'train.epochs', $epochs, $epochs FROM r;
INSERT INTO params (run, key, value, num)
  SELECT id, 'model.architecture', '3072-' || (256 << (i % 5)) || '-96', NULL FROM r;
CREATE TEMP TABLE names(name TEXT);
INSERT INTO names VALUES ('train.loss'), ('train.images_per_s'), ('train.epoch_seconds'),
  ('train.grad_norm'), ('train.checkpoint_seconds');
INSERT INTO metrics (run, stage, name, step, value)
  SELECT r.id, 'train', names.name, n.i + 1, 1.0 / (n.i + 1) + (r.i % 97) / 1000.0
  FROM r, n, names WHERE n.i < $epochs;
INSERT INTO final (run, name, stage, step, value)
  SELECT r.id, names.name, 'train', $epochs, 1.0 / $epochs + (r.i % 97) / 1000.0 FROM r, names;
INSERT INTO final (run, name, stage, step, value)
  SELECT id, 'copy.psnr', 'evaluate', 0, 15 + (i % 100) / 10.0 FROM r;
INSERT INTO final (run, name, stage, step, value)
  SELECT id, 'modify.fd_gain', 'modify', 20, ((i * 7) % 100) / 100.0 - 0.5 FROM r;
INSERT INTO stages (run, stage, key, status, seconds)
  SELECT id, s.stage, 'k', 'done', 10 FROM r,
  (SELECT 'train' AS stage UNION ALL SELECT 'evaluate' UNION ALL SELECT 'modify') s;
COMMIT;
SQL
echo "generated in $(( $(date +%s) - start )) s"

median_ms() {  # median wall time of a command, in milliseconds
  local times=() i t0 t1
  for ((i = 0; i < repeats; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (repeats + 1) / 2 ))p"
}

where="model.width >= 1024 and copy.psnr > 20"
echo "| command | median ms |"
echo "| --- | --- |"
echo "| runs --sweep bench --where \"$where\" | $(median_ms "$bin" --root "$root" runs --sweep bench --where "$where") |"
echo "| runs --where \"$where\" --sort copy.psnr --desc --limit 20 | $(median_ms "$bin" --root "$root" runs --where "$where" --sort copy.psnr --desc --limit 20) |"
echo "| status bench | $(median_ms "$bin" --root "$root" status bench) |"
echo "| runs --sweep bench (every run) | $(median_ms "$bin" --root "$root" runs --sweep bench) |"
