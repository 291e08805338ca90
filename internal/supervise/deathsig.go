package supervise

import (
	"os/exec"
	"runtime"
)

// spawner performs every fork of a Supervisor on one dedicated OS thread.
//
// Children get Pdeathsig=SIGTERM so that the kernel tells them to stop when
// the supervising process dies, even by SIGKILL. The Linux subtlety is that
// the "parent" of PR_SET_PDEATHSIG is the *thread* that forked the child,
// not the process: the signal fires when that thread exits. The Go runtime
// moves goroutines between threads and terminates a thread when a goroutine
// that locked it exits without unlocking, so forking from an arbitrary
// goroutine could deliver SIGTERM to a healthy child at a random moment
// (https://go.dev/issue/27505). Therefore all forks are funnelled through
// the spawner goroutine, which calls runtime.LockOSThread and does not unlock
// while the Supervisor lives, so no other goroutine can run on (and end) its
// thread. The spawner lives until Supervisor.Close, which first stops every
// child.
//
// Pdeathsig survives Spec.Credential: in the forked child Go calls
// setgroups/setgid/setuid before prctl(PR_SET_PDEATHSIG) (the kernel clears
// the death signal on credential changes), and it re-checks getppid after
// the prctl so a parent that died during the fork is not missed.
// TestNoOrphans checks this with a child running as nobody. (The kernel
// also clears it when exec'ing a set-user-ID or file-capability binary;
// such programs are only covered by Stop and CleanupStale.)
//
// Only the direct child receives the signal; its own children are reached by
// group signals from Stop, or by CleanupStale on the next run.
type spawner struct {
	reqs chan spawnRequest
	done chan struct{} // closed when the spawner goroutine has returned
}

type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

func startSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnRequest), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	// Unlocked only on the way out, when Close has stopped every child:
	// the thread then returns to the runtime's pool instead of being
	// terminated (which would signal any straggler) or, if it happens to be
	// the main thread, parked forever.
	defer runtime.UnlockOSThread()
	defer close(s.done)
	for req := range s.reqs {
		req.reply <- req.cmd.Start()
	}
}

// start runs cmd.Start on the spawner thread. It must not be called after
// close.
func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnRequest{cmd: cmd, reply: reply}
	return <-reply
}

// close stops the spawner and waits for its goroutine.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}
