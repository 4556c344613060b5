package workflow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// The stages of a change at which .oopsrc's hooks run (config.HookStages).
// pre-deploy, post-install and pre-switch come before traffic moves: a
// hook there that fails refuses the change. The others come after: a
// failure is warned about.
const (
	StagePreDeploy    = "pre-deploy"
	StagePostInstall  = "post-install"
	StagePreSwitch    = "pre-switch"
	StagePostSwitch   = "post-switch"
	StageOnRevert     = "on-revert"
	StageOnFailure    = "on-failure"
	StagePostRollback = "post-rollback"
)

// defaultHookTimeout is hook-timeout when .oopsrc does not set it.
const defaultHookTimeout = 60 * time.Second

// hookTailLines bound what history keeps of a hook's output.
const (
	hookTailLines = 20
	hookTailBytes = 2048
)

// HookCall is one hook to run.
type HookCall struct {
	Stage string
	// Args is the command, $OOPS_* expanded.
	Args []string
	// Dir is where it runs: the .oopsrc folder.
	Dir string
	// Env is added to this process's environment: the event's OOPS_*
	// variables and the lock's token.
	Env []string
	// Stdin is the event as JSON.
	Stdin   []byte
	Timeout time.Duration
	// Output is told each line the hook writes (stdout and stderr).
	Output func(line string)
}

// HookRunner runs hooks to their end.
type HookRunner interface {
	// RunHook returns the hook's exit status, or -1 and why it did not
	// finish (it could not start, it was killed at its timeout or by an
	// interrupt).
	RunHook(ctx context.Context, call HookCall) (exit int, err error)
}

// ExecHooks runs hooks as processes, each in a process group of its own,
// killed with everything it started when its timeout passes.
type ExecHooks struct{}

// RunHook implements HookRunner.
func (ExecHooks) RunHook(ctx context.Context, call HookCall) (int, error) {
	if len(call.Args) == 0 {
		return -1, errors.New("no command")
	}
	ctx, cancel := context.WithTimeout(ctx, call.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, call.Args[0], call.Args[1:]...)
	cmd.Dir = call.Dir
	cmd.Env = append(os.Environ(), call.Env...)
	cmd.Stdin = bytes.NewReader(call.Stdin)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	killGroup(cmd)
	// What it started and left holding its output must not hold us.
	cmd.WaitDelay = 2 * time.Second
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			call.Output(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr) // a line past 1 MiB: drain, so the hook is not blocked
	}()
	err := cmd.Run()
	pw.Close()
	<-scanned
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return -1, fmt.Errorf("killed after %s (hook-timeout)", call.Timeout)
	case ctx.Err() != nil:
		return -1, fmt.Errorf("killed: %w", context.Cause(ctx))
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	case errors.Is(err, exec.ErrWaitDelay):
		// It ended, leaving a process it started holding its output (a
		// daemon): its own exit status is what counts.
		return cmd.ProcessState.ExitCode(), nil
	case err != nil:
		return -1, err
	}
	return 0, nil
}

// hookRefusedError: a hook before the switch (pre-deploy, post-install,
// pre-switch) failed, so the change was refused. It is a failed gate like
// an unhealthy color: exit 6, recorded as refused.
type hookRefusedError struct{ err error }

func (e *hookRefusedError) Error() string   { return "refused by " + e.err.Error() }
func (e *hookRefusedError) Unwrap() []error { return []error{target.ErrUnhealthy, e.err} }

// hooks is the HookRunner of d, processes when none was given.
func (r *Runner) hooks() HookRunner {
	if r.d.Hooks != nil {
		return r.d.Hooks
	}
	return ExecHooks{}
}

// runsHooks says whether a change of this action runs the stage hooks:
// oops off points the preview load balancer only; live traffic stays.
func runsHooks(action string) bool { return action != release.ActionPreview }

// runHook runs .oopsrc's hook for stage, if it has one, for ev as known so
// far (its result shown as result), under ctx: the lock's token reaches
// the hook through it. The hook's output goes to stderr, each line after
// "hook STAGE: ", and the run is recorded in ev with the tail of its
// output. It returns nil when there is no hook or it exited 0.
func (r *Runner) runHook(ctx context.Context, stage string, ev *release.Event, result, url string) error {
	c, err := r.d.Config()
	if err != nil {
		return nil
	}
	args, ok := c.Values.Hooks[stage]
	if !ok {
		return nil
	}
	timeout := c.Values.HookTimeout
	if timeout <= 0 {
		timeout = defaultHookTimeout
	}
	shown := *ev
	shown.Result = result
	stdin, err := json.Marshal(&shown)
	if err != nil {
		return fmt.Errorf("hook %s: encode the event: %w", stage, err)
	}
	vars := hookVars(&shown, url)
	env := make([]string, 0, len(vars)+2)
	for _, kv := range vars {
		env = append(env, kv[0]+"="+kv[1])
	}
	env = append(env, target.ChildEnv(ctx)...)
	expanded := make([]string, len(args))
	script := shellScript(args)
	for i, a := range args {
		if i == script {
			// The shell expands $OOPS_* from the environment, as the
			// script quotes them; put in by oops, a reason would be code.
			expanded[i] = a
			continue
		}
		expanded[i] = os.Expand(a, func(k string) string {
			for _, kv := range vars {
				if kv[0] == k {
					return kv[1]
				}
			}
			return "$" + k // not ours: left as written
		})
	}
	var tail []string
	r.d.Report.Progressf("running hook %s: %s", stage, strings.Join(expanded, " "))
	exit, err := r.hooks().RunHook(ctx, HookCall{
		Stage: stage, Args: expanded, Dir: c.Dir, Env: env, Stdin: stdin, Timeout: timeout,
		Output: func(line string) {
			r.d.Report.Progressf("hook %s: %s", stage, line)
			if tail = append(tail, line); len(tail) > hookTailLines {
				tail = tail[1:]
			}
		},
	})
	if err == nil && exit != 0 {
		err = fmt.Errorf("exit status %d", exit)
	}
	run := release.HookRun{Stage: stage, Exit: exit, Tail: tailOf(tail)}
	if err != nil {
		run.Error = err.Error()
	}
	ev.AddHook(run)
	if err != nil {
		return fmt.Errorf("hook %s (%s): %w", stage, args[0], err)
	}
	return nil
}

// shells are the programs whose -c argument is a script.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"}

// shellScript is the index in args of the script of a shell run with -c
// (["sh", "-ec", SCRIPT, ...], also after "env" and its settings); -1
// when there is none.
func shellScript(args []string) int {
	i := 0
	if filepath.Base(args[0]) == "env" {
		for i = 1; i < len(args) && (strings.HasPrefix(args[i], "-") || strings.Contains(args[i], "=")); i++ {
		}
		if i == len(args) {
			return -1
		}
	}
	if !slices.Contains(shells, filepath.Base(args[i])) {
		return -1
	}
	if filepath.Base(args[i]) == "busybox" {
		i++ // busybox sh -c
	}
	c := false
	for i++; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			continue
		case c && !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+"):
			return i
		case strings.HasPrefix(a, "-o") || strings.HasPrefix(a, "+o"):
			i++ // -o OPTION
		case strings.HasPrefix(a, "--"):
			// --norc, --login
		case strings.HasPrefix(a, "-"):
			c = c || strings.ContainsRune(a, 'c')
		case !c:
			return -1 // a script file: its arguments are not code
		}
	}
	return -1
}

// tailOf joins the last lines of a hook's output, at most hookTailBytes
// of them.
func tailOf(lines []string) string {
	s := strings.Join(lines, "\n")
	if len(s) > hookTailBytes {
		cut := len(s) - hookTailBytes
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++ // not inside a character
		}
		s = "..." + s[cut:]
	}
	return s
}

// hookVars are the event's variables for a hook, in order.
func hookVars(ev *release.Event, url string) [][2]string {
	return [][2]string{
		{"OOPS_ACTION", ev.Action},
		{"OOPS_APPLICATION", ev.App},
		{"OOPS_FROM_COLOR", string(ev.From.Color)},
		{"OOPS_FROM_COMMIT", ev.From.Commit},
		{"OOPS_TO_COLOR", string(ev.To.Color)},
		{"OOPS_TO_COMMIT", ev.To.Commit},
		{"OOPS_WHO", ev.Who},
		{"OOPS_REASON", ev.Reason},
		{"OOPS_RESULT", ev.Result},
		{"OOPS_URL", url},
	}
}

// gateHook runs a hook that comes before traffic moves (pre-deploy,
// post-install, pre-switch): its failure refuses the change, unless
// force: then it is a warning. A rollback runs none: nothing but the
// target blocks or delays it (a hook could hang until hook-timeout).
func (r *Runner) gateHook(ctx context.Context, stage string, ev *release.Event, url string, force bool) error {
	if ev.Action == release.ActionRollback {
		return nil
	}
	err := r.runHook(ctx, stage, ev, "", url)
	if err == nil {
		return nil
	}
	if force {
		r.warnf("%v: going on (--force)", err)
		return nil
	}
	return target.Hinted(&hookRefusedError{err}, "its output is above and in oops history --json; fix what it found, or pass --force to go ahead anyway")
}

// afterHook runs a hook that comes once the change is made or has
// failed: its failure is a warning.
func (r *Runner) afterHook(ctx context.Context, stage string, ev *release.Event, result, url string) {
	if err := r.runHook(ctx, stage, ev, result, url); err != nil {
		r.warnf("%v", err)
	}
}

// switchHooks are the hooks after target.Switch: post-switch (or
// post-rollback) once traffic moved and held, on-revert once it went
// back.
func (r *Runner) switchHooks(ctx context.Context, ev *release.Event, res *target.SwitchResult, err error) {
	if res == nil || res.Plan == nil || !runsHooks(ev.Action) {
		return
	}
	url := colorURL(res.Before, res.Plan.To)
	switch {
	case err == nil && res.Switched:
		stage := StagePostSwitch
		if ev.Action == release.ActionRollback {
			stage = StagePostRollback
		}
		r.afterHook(ctx, stage, ev, release.ResultOK, url)
	case res.Reverted:
		r.afterHook(context.WithoutCancel(ctx), StageOnRevert, ev, release.ResultFailed, url)
	}
}

// onFailure runs the on-failure hook for a change that failed or was
// refused, whatever the context's state: it is what tells about an
// interrupted or lock-lost change too.
func (r *Runner) onFailure(ctx context.Context, ev *release.Event, runErr error) {
	if ResultOf(runErr) == release.ResultOK || !runsHooks(ev.Action) {
		return
	}
	fev := *ev
	fev.Error = runErr.Error()
	r.afterHook(context.WithoutCancel(ctx), StageOnFailure, &fev, ResultOf(runErr), "")
	ev.Hooks = fev.Hooks
}

// colorURL is where color c answers, when the state says: the local
// target's port on 127.0.0.1, or the one instance of a color with an
// address and a port; "" otherwise.
func colorURL(st *target.State, c release.Color) string {
	if st == nil || c == "" {
		return ""
	}
	cs := st.Color(c)
	if cs.Color != c || cs.Port == 0 {
		return ""
	}
	if st.Kind == "local" {
		return fmt.Sprintf("http://127.0.0.1:%d", cs.Port)
	}
	if len(cs.Instances) == 1 && cs.Instances[0].Address != "" {
		return "http://" + net.JoinHostPort(cs.Instances[0].Address, strconv.Itoa(cs.Port))
	}
	return ""
}

// checkHooks is doctor's look at the hooks: each program can be found (a
// path relative to the .oopsrc folder, else on PATH). A missing one is a
// warning: it would refuse deploys and switches, never a rollback.
func checkHooks(c *config.Config) Check {
	var found, missing []string
	for _, stage := range config.HookStages {
		args, ok := c.Values.Hooks[stage]
		if !ok {
			continue
		}
		prog := args[0]
		var err error
		if strings.ContainsRune(prog, filepath.Separator) {
			if !filepath.IsAbs(prog) {
				prog = filepath.Join(c.Dir, prog)
			}
			var fi os.FileInfo
			if fi, err = os.Stat(prog); err == nil && (fi.IsDir() || fi.Mode()&0o111 == 0) {
				err = errors.New("not an executable file")
			}
		} else {
			_, err = exec.LookPath(prog)
		}
		if err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner // without the path, said already
			}
			missing = append(missing, fmt.Sprintf("%s: %s: %v", stage, args[0], err))
			continue
		}
		found = append(found, stage)
	}
	if len(missing) > 0 {
		return Check{Name: "hooks", Status: "warn", Detail: strings.Join(missing, "; "),
			Hint: "a hook that cannot run fails: before the switch it refuses deploys and switches (never a rollback); fix hooks in " + c.Path}
	}
	return Check{Name: "hooks", Status: "ok", Detail: strings.Join(found, ", ") + ": found"}
}
