package main

import (
	"context"
	"errors"
	"io"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("serve: not built yet (issue 4)")
}

func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return report(stderr, errors.New("test: not built yet (issue 4)"))
}
