import { cpus, hostname } from 'node:os';
import { Command } from 'commander';
import { connectionOf, DEFAULT_QUEUE_NAME } from '../../batch/redis-url.js';
import { parseInteger } from '../parse.js';
import { run } from '../common-options.js';

interface WorkerFlags {
  queue: string;
  queueName: string;
  workers: string;
  lockDuration: string;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('take batch jobs from a BullMQ queue (see `seg-grad-cam batch --queue`) until stopped with Ctrl-C or SIGTERM')
    .requiredOption('--queue <redis-url>', 'redis://HOST:PORT of the queue')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .option('--workers <n>', 'worker threads, one model each; also jobs at once (default: the cores)', String(cpus().length))
    .option('--lock-duration <ms>', 'a job whose worker stops renewing its lock this long is taken again by another worker', '30000')
    .addHelpText(
      'after',
      `
The model, the images and the output folder named in the jobs must be readable (and the output
folder writable) at the same paths on this machine as on the submitter's. See docs/batch.md.`,
    )
    .action((flags: WorkerFlags) =>
      run(async () => {
        connectionOf(flags.queue);
        const workers = parseInteger(flags.workers, '--workers', 1);
        const lockDuration = parseInteger(flags.lockDuration, '--lock-duration', 1000);
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const name = `${hostname()}-${process.pid}`;
        process.stderr.write(`seg-grad-cam worker ${name}: ${workers} threads on ${flags.queue} (${flags.queueName})\n`);
        const { runQueueWorker } = await import('../../batch/queue.js');
        await runQueueWorker({
          queue: flags.queue,
          queueName: flags.queueName,
          workers,
          lockDuration,
          signal: abort.signal,
          name,
          onJob: (event, item, error) => process.stdout.write(`${event} ${item}${error ? `: ${error}` : ''}\n`),
        });
      }),
    );
}
