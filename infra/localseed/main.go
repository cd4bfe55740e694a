// Command localseed prepares DynamoDB Local for `make invoke-<fn>`: a table holding the demo
// integration (pointed at a CloudTrail emulator) and the run the events/ payloads name
// ("run-example-1"), with the seal key in a file. It prints the functions' environment as
// KEY=value lines for the shell to export. Running it again reuses what exists.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/workflow"
)

func main() {
	endpoint := flag.String("dynamodb", "http://127.0.0.1:8000", "DynamoDB Local `url`")
	emulatorURL := flag.String("cloudtrail", "", "CloudTrail emulator `url` the demo integration reads")
	table := flag.String("table", "trailproof-local", "table `name`")
	keyFile := flag.String("key", ".stack/seal.key", "seal key `file` (created 0600 when absent)")
	flag.Parse()
	if err := run(context.Background(), *endpoint, *emulatorURL, *table, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "localseed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, endpoint, emulatorURL, table, keyFile string) error {
	if emulatorURL == "" {
		return fmt.Errorf("--cloudtrail URL is required (start one with: trailproof emulate --corpus examples/demo/cloudtrail.json)")
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return err
	}
	key, err := seal.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	sealer, err := seal.NewAESGCM(key)
	if err != nil {
		return err
	}
	store, err := dynamo.New(dynamo.LocalClient(endpoint), table, dynamo.WithSealer(sealer))
	if err != nil {
		return err
	}
	if err := store.CreateTable(ctx); err != nil {
		return fmt.Errorf("DynamoDB Local at %s: %w", endpoint, err)
	}
	integ, err := core.LoadIntegrationFile("examples/demo/integration.json")
	if err != nil {
		return err
	}
	action, err := core.LoadActionFile("examples/demo/action.json")
	if err != nil {
		return err
	}
	integ.ID, integ.Endpoint = "demo", emulatorURL
	err = store.CreateIntegration(ctx, integ)
	if core.ErrorCode(err) == core.ECONFLICT {
		err = store.UpdateIntegration(ctx, integ) // a stack seeded before: refresh the demo
	}
	if err != nil {
		return err
	}
	if _, err := workflow.New(store, nil).CreateRun(ctx, integ.ID, action, "run-example-1"); err != nil {
		return err
	}
	abs, _ := filepath.Abs(keyFile)
	fmt.Printf("TABLE_NAME=%s\nDYNAMODB_ENDPOINT=%s\nSEAL_KEY_FILE=%s\nAWS_REGION=us-east-1\nAWS_EC2_METADATA_DISABLED=true\n", table, endpoint, abs)
	return nil
}
