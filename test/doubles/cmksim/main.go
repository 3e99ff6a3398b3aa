// Command cmksim is a test double for CloudMonkey (cmk) and the CloudStack API behind it, for testing
// hack/register.sh. It takes cmk's argv (`-o json <verb> <noun> key=value...`) and handles each call as
// CloudStack's API layer and managers do, citing the source it reproduces: parameters are unpacked and typed as
// ParamUnpackWorker and ParamProcessWorker do (params.go), maps read with the getter each command uses
// (convertDetailsToMap, or with the External: prefix), and the result stored as CloudStack stores it, in a state
// file tests read (store.go). It answers as cmk prints, and runs custom actions with the extension's executable.
//
// Environment: CMKSIM_STATE names the state file, CMKSIM_LOG the call log (one JSON object per line, with the
// parameters CloudStack would ignore), CMKSIM_EXTENSION the extension's executable for runCustomAction.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// config is the environment cmksim runs in.
type config struct{ state, log, extension string }

func main() {
	cfg := config{state: os.Getenv("CMKSIM_STATE"), log: os.Getenv("CMKSIM_LOG"), extension: os.Getenv("CMKSIM_EXTENSION")}
	out, err := run(os.Args[1:], cfg)
	if err != nil {
		// Not what cmk prints: cmk (apache/cloudstack-cloudmonkey cmk.go and cmd/network.go NewAPIRequest) prints
		// "🙈 Error: (HTTP <errorcode>, error code <cserrorcode>) <errortext>" on stdout and exits 1. cmksim
		// prints the API's errorcode and errortext as JSON instead, and has no cserrorcode.
		code := errInternal
		var apiErr *apiError
		if errors.As(err, &apiErr) {
			code = apiErr.code
		}
		data, _ := json.Marshal(map[string]any{"errorcode": code, "errortext": err.Error()})
		fmt.Println(string(data))
		os.Exit(1)
	}
	fmt.Println(out)
}

// run handles one cmk invocation and returns what cmk prints.
func run(args []string, cfg config) (string, error) {
	if len(args) < 4 || args[0] != "-o" || args[1] != "json" {
		return "", errors.New("usage: cmk -o json <verb> <noun> [key=value]")
	}
	name := strings.ToLower(args[2] + args[3])
	command, known := apis()[name]
	if !known {
		return "", fmt.Errorf("unknown API command %s", name)
	}
	req, err := unpack(args[4:])
	if err != nil {
		return "", err
	}
	v, err := process(name, req, command.params)
	if logErr := logCall(cfg.log, name, args[4:], v.ignored); logErr != nil {
		return "", logErr
	}
	if err != nil {
		return "", err
	}
	st, err := loadStore(cfg.state)
	if err != nil {
		return "", err
	}
	answer, err := command.handle(&call{st: st, v: v, cfg: cfg})
	if err != nil {
		return "", err
	}
	if err := st.save(cfg.state); err != nil {
		return "", err
	}
	data, err := json.Marshal(answer)
	return string(data), err
}

// logCall records the call as sent, and what CloudStack would silently ignore of it.
func logCall(path, api string, args, ignored []string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(map[string]any{"api": api, "args": args, "ignored": ignored})
}
