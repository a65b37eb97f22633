/** How long a terminated Worker may take to exit before its job's files are removed anyway. */
const EXIT_WAIT_MS = 5_000;

/**
 * One Bun Worker of the engine's (compactions, flushes), started by a runner at its first job and
 * kept for the next. It holds the process open only while a job runs (`busy`). The runner hears
 * each message, and once, why the Worker died (an uncaught error, or it exited).
 *
 * The entry point is named relative to the runner's module; in a binary built by `bun build
 * --compile`, every module's URL is the binary's own and each Worker's entry sits beside it under
 * its bare name (scripts/build.ts builds it so), which the same relative URL then names.
 */
export class WorkerThread<In, Out> {
  private readonly worker: Worker;
  /** Resolves when the Worker has exited (its "close" event). */
  private readonly exited: Promise<void>;

  constructor(entry: URL, handlers: { message(message: Out): void; died(why: string): void }) {
    const worker = new Worker(entry);
    worker.unref();
    this.exited = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve()));
    worker.onmessage = (event: MessageEvent<Out>) => handlers.message(event.data);
    worker.addEventListener("error", (event) => handlers.died(`the Worker failed: ${event.message}`));
    worker.addEventListener("close", () => handlers.died("the Worker exited"));
    this.worker = worker;
  }

  post(message: In, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  /** Whether a job runs: a busy Worker keeps the process alive, an idle one does not. */
  set busy(busy: boolean) {
    if (busy) this.worker.ref();
    else this.worker.unref();
  }

  /** Terminates the Worker and resolves once it has exited (or EXIT_WAIT_MS passed). */
  async terminate(): Promise<void> {
    this.worker.terminate();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, EXIT_WAIT_MS)))]);
    clearTimeout(timer);
  }
}
