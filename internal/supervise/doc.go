// Package supervise runs and supervises long-lived child processes: the
// controller uses it for mariadbd, redis-server, node agents and edge, and
// node agents use it for php-fpm.
//
// Every child runs in its own process group and is signalled as a group. A
// child that exits on its own is restarted with exponential backoff until it
// exits too often within a window, at which point the Process is marked
// Failed with an error that points at its log file.
//
// Orphans are prevented in two layers:
//
//   - Pdeathsig=SIGTERM on every child, so the kernel tells children to stop
//     when the supervising process dies, even by SIGKILL (see deathsig.go for
//     why all forks happen on one locked OS thread).
//   - Optional pid files (Spec.PIDDir) so that the next run can find and
//     terminate whatever survived anyway, with CleanupStale.
//
// Children must stay in the foreground: a program that daemonizes (forks and
// lets its first process exit) looks like a crash to the supervisor.
//
// The package is Linux-only.
package supervise
