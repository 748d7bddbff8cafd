package procout

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a child process whose output is kept in a Buffer, with one
// goroutine that waits for it, so that callers can ask whether it exited
// without blocking. Stop and Kill return once it has exited.
type Process struct {
	Cmd *exec.Cmd
	Out *Buffer

	exited chan struct{}
	err    error // set before exited is closed
}

// StopGrace is how long Stop waits after SIGINT before it kills.
const StopGrace = 10 * time.Second

// NewProcess returns cmd, not started, writing its standard error, and its
// standard output unless cmd already has one (a pipe), to Out.
func NewProcess(cmd *exec.Cmd) *Process {
	p := &Process{Cmd: cmd, Out: &Buffer{}, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Out
	}
	cmd.Stderr = p.Out
	return p
}

// Start starts the process and the goroutine that waits for it.
func (p *Process) Start() error {
	if err := p.Cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error (nil for status 0); valid once Exited is
// closed.
func (p *Process) Err() error {
	<-p.exited
	return p.err
}

// Done reports whether the process has exited.
func (p *Process) Done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	if !p.Done() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// Stop sends SIGINT and waits up to StopGrace, then kills.
func (p *Process) Stop() {
	if !p.Done() {
		_ = p.Cmd.Process.Signal(os.Interrupt)
	}
	t := time.NewTimer(StopGrace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.Kill()
	}
}
