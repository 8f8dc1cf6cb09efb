/**
 * Node.js flags the registry process is started with (Makefile `run`, the container
 * image's ENTRYPOINT, the benchmark; a unit test keeps them in step). V8 reads them
 * only at start-up, so they cannot be set from inside the process.
 *
 * --max-semi-space-size=4: V8's young generation may otherwise grow to 16 MB per
 * semi-space, about 30 MB of resident memory that a registry's short-lived request
 * objects do not need: measured 122 -> 92 MB idle and 155 -> 118-128 MB after pushes on
 * PostgreSQL, with manifest GET throughput unchanged (bench/README.md, "Memory").
 *
 * --min-semi-space-size=4: the young generation keeps those 4 MB. V8 starts it at 1 MB and
 * shrinks it again at collections after a quiet spell (the idle collector's among them), so
 * every burst after a pause ran with a small one: more scavenges, more short-lived request
 * objects promoted, and the pages faulted in again. Cold proxy fills of 512 KiB blobs, taking
 * turns with the flag and without: a third fewer scavenges, 8-16 MB less RSS after pulls (the
 * same idle after start), and less CPU per blob in 31 of 46 paired rounds over three runs, by
 * about 0.5 ms of 12 (docs/proxy-cache.md, "A young generation that stays").
 *
 * --no-incremental-marking: under upload bursts that follow other traffic, V8 kept
 * starting incremental marking with the old generation far below its limit, one full
 * collection every 50-100 ms, and its marking threads took a quarter of the CPU; 10 MiB
 * pushes ran at 23-26 pushes/s instead of 31-34. Without incremental marking a full
 * collection runs only when the old generation reaches its limit (pauses of about
 * 20 ms for a 20-60 MB heap). In the full benchmark, peak RSS went 158.9 -> 160.2 MB on
 * PostgreSQL and 260.1 -> 317.4 MB on PGlite, whose thread runs with the same flags
 * (bench/README.md).
 *
 * --expose-gc: V8's memory reducer, which collects a heap gone idle, needs incremental
 * marking; the registry does that itself instead (idle-collector.ts).
 */
export const REGISTRY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--min-semi-space-size=4', '--no-incremental-marking', '--expose-gc'];
