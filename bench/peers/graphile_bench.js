#!/usr/bin/env node
/*
 * Peer benchmark: graphile-worker 0.17.x (https://worker.graphile.org).
 *
 * Same CLI contract as procrastinate_bench.py:
 *   node graphile_bench.js --dsn postgresql://... --mode throughput|latency \
 *        [--jobs N] [--concurrency C]
 * Prints ONE JSON line on stdout:
 *   throughput: {"system":"graphile-worker","mode":"throughput","jobs":N,
 *                "concurrency":C,"seconds":..,"per_second":..,
 *                "first_tenth_per_second":..,"last_tenth_per_second":..,...}
 *   latency:    {"system":"graphile-worker","mode":"latency","jobs":N,
 *                "concurrency":C,"p50_ms":..,"p99_ms":..,...}
 *
 * The `graphile_worker` schema is dropped and re-created (runMigrations) at
 * the start of every run. The worker is graphile-worker's real `run()` with
 * default pollInterval (2 s) and LISTEN/NOTIFY, noHandleSignals: true.
 */
"use strict";

const { performance } = require("node:perf_hooks");
const { EventEmitter } = require("node:events");
const pg = require("pg");
const gw = require("graphile-worker");

const SYSTEM = "graphile-worker";
const SCHEMA = "graphile_worker"; // default schema

function parseArgs(argv) {
  const opts = {
    dsn: null,
    mode: null,
    jobs: null,
    concurrency: 1,
    warmup: 5,
    gapMinMs: 10,
    gapMaxMs: 20,
    seed: 1,
    jobTimeoutMs: 30000,
    logLevel: "warning",
    maxPoolSize: null,
  };
  const map = {
    "--dsn": ["dsn", String],
    "--mode": ["mode", String],
    "--jobs": ["jobs", Number],
    "--concurrency": ["concurrency", Number],
    "--warmup": ["warmup", Number],
    "--gap-min-ms": ["gapMinMs", Number],
    "--gap-max-ms": ["gapMaxMs", Number],
    "--seed": ["seed", Number],
    "--job-timeout-ms": ["jobTimeoutMs", Number],
    "--log-level": ["logLevel", (s) => String(s).toLowerCase()],
    "--max-pool-size": ["maxPoolSize", Number],
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    const eq = a.indexOf("=");
    if (eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (a === "-h" || a === "--help") {
      process.stderr.write(
        "usage: node graphile_bench.js --dsn postgresql://... --mode throughput|latency " +
          "[--jobs N] [--concurrency C] [--warmup W] [--gap-min-ms 10] [--gap-max-ms 20] " +
          "[--seed S] [--log-level warning] [--max-pool-size P]\n",
      );
      process.exit(0);
    }
    const m = map[a];
    if (!m) throw new Error(`unknown argument ${a}`);
    if (v === undefined) v = argv[++i];
    if (v === undefined) throw new Error(`missing value for ${a}`);
    opts[m[0]] = m[1](v);
  }
  if (!opts.dsn) throw new Error("--dsn is required");
  if (opts.mode !== "throughput" && opts.mode !== "latency")
    throw new Error("--mode must be throughput or latency");
  if (opts.jobs == null) opts.jobs = opts.mode === "throughput" ? 20000 : 500;
  // graphile-worker's default pool is 10 and it warns ("may lead to
  // non-optimal performance") when concurrency exceeds it; size it the way the
  // library asks: room for every worker plus the LISTEN connection.
  if (!opts.maxPoolSize) opts.maxPoolSize = Math.max(10, opts.concurrency + 2);
  return opts;
}

const LEVELS = { error: 0, warning: 1, info: 2, debug: 3 };

function makeLogger(level) {
  const max = LEVELS[level] ?? 1;
  return new gw.Logger((scope) => (lvl, message) => {
    if ((LEVELS[lvl] ?? 0) <= max) {
      process.stderr.write(`[graphile-worker ${lvl}] ${message}\n`);
    }
  });
}

// Small deterministic PRNG (mulberry32) for the inter-arrival gaps.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, q) {
  if (!sorted.length) return NaN;
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[rank - 1];
}

const round = (x, d) => (x == null || !isFinite(x) ? null : Number(x.toFixed(d)));

async function withClient(dsn, fn) {
  const client = new pg.Client({ connectionString: dsn });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function resetSchema(opts, logger) {
  await withClient(opts.dsn, (c) => c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`));
  await gw.runMigrations({ connectionString: opts.dsn, logger });
}

async function pendingJobs(client) {
  const { rows } = await client.query(
    `SELECT count(*)::int AS n FROM ${SCHEMA}._private_jobs`,
  );
  return rows[0].n;
}

function tenthRates(starts) {
  const n = starts.length;
  const k = Math.floor(n / 10);
  if (k < 2) return {};
  const s = Float64Array.from(starts).sort();
  const first = s[k] - s[0];
  const last = s[n - 1] - s[n - 1 - k];
  return {
    first_tenth_per_second: first > 0 ? round(k / (first / 1000), 1) : null,
    last_tenth_per_second: last > 0 ? round(k / (last / 1000), 1) : null,
  };
}

async function runThroughput(opts, logger) {
  const N = opts.jobs;
  // Pre-enqueue N jobs in ONE SQL statement, before the timer starts.
  const tEnq = performance.now();
  await withClient(opts.dsn, async (c) => {
    await c.query(
      `SELECT count(*) FROM (SELECT ${SCHEMA}.add_job('noop', '{}'::json)
         FROM generate_series(1, $1::int)) s`,
      [N],
    );
    const n = await pendingJobs(c);
    if (n !== N) throw new Error(`pre-enqueue failed: ${n} jobs instead of ${N}`);
    await c.query(`ANALYZE ${SCHEMA}._private_jobs`);
  });
  const enqueueSeconds = (performance.now() - tEnq) / 1000;

  const starts = [];
  let completed = 0;
  let succeeded = 0;
  let failed = 0;
  let resolveAllDone;
  const allDone = new Promise((r) => (resolveAllDone = r));
  const events = new EventEmitter();
  events.on("job:success", () => succeeded++);
  events.on("job:error", () => failed++);
  events.on("job:complete", () => {
    if (++completed === N) resolveAllDone();
  });

  const poller = new pg.Client({ connectionString: opts.dsn });
  await poller.connect();

  // ---- timed section ----
  const t0 = performance.now();
  const runner = await gw.run({
    connectionString: opts.dsn,
    concurrency: opts.concurrency,
    maxPoolSize: opts.maxPoolSize,
    noHandleSignals: true,
    logger,
    events,
    taskList: {
      noop: async () => {
        starts.push(performance.now());
      },
    },
  });
  await allDone;
  // The Nth task has returned; its completion (DELETE) is issued
  // asynchronously by graphile-worker, so wait until the table is empty.
  while ((await pendingJobs(poller)) !== 0) {
    /* tight poll: one round trip each */
  }
  const t1 = performance.now();
  // ---- end timed section ----

  await runner.stop();
  await runner.promise.catch(() => {});
  await poller.end();
  if (succeeded !== N || failed !== 0)
    throw new Error(`not all jobs succeeded: success=${succeeded} error=${failed}`);

  const seconds = (t1 - t0) / 1000;
  return {
    system: SYSTEM,
    mode: "throughput",
    jobs: N,
    concurrency: opts.concurrency,
    max_pool_size: opts.maxPoolSize,
    seconds: round(seconds, 4),
    per_second: round(N / seconds, 1),
    ...tenthRates(starts),
    enqueue_seconds: round(enqueueSeconds, 3),
    version: require("graphile-worker/package.json").version,
  };
}

async function runLatency(opts, logger) {
  const started = new Map(); // i -> performance.now() at task start
  const waiters = new Map(); // i -> resolve
  const runner = await gw.run({
    connectionString: opts.dsn,
    concurrency: opts.concurrency,
    maxPoolSize: opts.maxPoolSize,
    noHandleSignals: true,
    logger,
    taskList: {
      noop: async (payload) => {
        const t = performance.now(); // first thing the job does
        started.set(payload.i, t);
        const w = waiters.get(payload.i);
        if (w) w();
      },
    },
  });

  // Dedicated enqueue connection: the clock is read in the continuation of
  // the add_job query, i.e. right after its (autocommit) COMMIT is acknowledged.
  const enq = new pg.Client({ connectionString: opts.dsn });
  await enq.connect();
  const rand = rng(opts.seed);
  const lat = [];
  const rtt = []; // enqueue round trip (send -> commit ack), for context
  const latSend = []; // enqueue call start -> job start (includes the commit)
  try {
    const total = opts.warmup + opts.jobs;
    for (let i = 0; i < total; i++) {
      // idle worker: previous job is done; wait 10-20 ms before next insert
      await sleep(opts.gapMinMs + rand() * (opts.gapMaxMs - opts.gapMinMs));
      let timer;
      const startedP = new Promise((resolve, reject) => {
        waiters.set(i, resolve);
        timer = setTimeout(
          () => reject(new Error(`job ${i} did not start within ${opts.jobTimeoutMs} ms`)),
          opts.jobTimeoutMs,
        );
      });
      const tSend = performance.now();
      await enq.query(`SELECT ${SCHEMA}.add_job('noop', json_build_object('i', $1::int))`, [i]);
      const tCommit = performance.now();
      if (i >= opts.warmup) rtt.push(tCommit - tSend);
      await startedP;
      clearTimeout(timer);
      waiters.delete(i);
      if (i >= opts.warmup) {
        lat.push(started.get(i) - tCommit);
        latSend.push(started.get(i) - tSend);
      }
    }
    await sleep(50); // let the last completion land
  } finally {
    await runner.stop();
    await runner.promise.catch(() => {});
  }
  const remaining = await pendingJobs(enq);
  await enq.end();

  lat.sort((a, b) => a - b);
  const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
  return {
    system: SYSTEM,
    mode: "latency",
    jobs: opts.jobs,
    concurrency: opts.concurrency,
    p50_ms: round(percentile(lat, 50), 3),
    p99_ms: round(percentile(lat, 99), 3),
    mean_ms: round(mean, 3),
    min_ms: round(lat[0], 3),
    max_ms: round(lat[lat.length - 1], 3),
    negative_count: lat.filter((x) => x < 0).length,
    from_send_p50_ms: round(percentile(latSend.sort((a, b) => a - b), 50), 3),
    from_send_p99_ms: round(percentile(latSend, 99), 3),
    enqueue_rtt_p50_ms: round(percentile(rtt.sort((a, b) => a - b), 50), 3),
    remaining_jobs: remaining,
    version: require("graphile-worker/package.json").version,
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const logger = makeLogger(opts.logLevel);
  await resetSchema(opts, logger);
  const result =
    opts.mode === "throughput"
      ? await runThroughput(opts, logger)
      : await runLatency(opts, logger);
  // 1-minute load average at the end of the run: on a 2-core machine anything
  // much above ~2 (the run itself accounts for 1-2) means something else
  // competed for the CPU.
  result.loadavg_1m = round(require("node:os").loadavg()[0], 2);
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
