import { simulateCommand } from "./cli";

// `npm run simulate -- ...`: one error boundary, the exit status from the command.
simulateCommand(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
        process.exitCode = code;
    },
    (err: unknown) => {
        process.stderr.write(`simulate: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 2;
    },
);
