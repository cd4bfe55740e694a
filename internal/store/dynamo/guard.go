package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
)

// The delete guard. An integration's item holds "activeRuns", the string set of its runs that are
// waiting or querying. CreateRun adds the run in the transaction that writes the run (conditional
// on the integration existing), the UpdateRun that ends a run removes it in the same way, and
// DeleteIntegration deletes only on the condition that the set is absent (DynamoDB removes an
// empty set). So a delete and a concurrent run start are ordered by DynamoDB itself: either the
// run is refused (ENOTFOUND) or the delete is (ECONFLICT).

// attrActiveRuns names the integration item's set of active run IDs.
const attrActiveRuns = "activeRuns"

// errIntegrationGone says that the integration item a run write is bound to does not exist.
var errIntegrationGone = errors.New("integration gone")

// maxTxAttempts bounds the retries of a transaction that collided with another one on the same
// integration item (DynamoDB cancels one of two concurrent transactions on an item).
const maxTxAttempts = 8

// markActive is the transaction item that adds runID to the integration's active runs, or
// removes it (add false); it fails its condition when the integration does not exist.
func (s *Store) markActive(integrationID, runID string, add bool) *types.TransactWriteItem {
	expr := "ADD #a :r"
	if !add {
		expr = "DELETE #a :r"
	}
	return &types.TransactWriteItem{Update: &types.Update{
		TableName: &s.table, Key: key(integrationsPK, integrationSK(integrationID)),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeNames:  map[string]string{"#a": attrActiveRuns},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberSS{Value: []string{runID}}},
	}}
}

// integrationExists is the transaction item that only checks that the integration exists.
func (s *Store) integrationExists(integrationID string) *types.TransactWriteItem {
	return &types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: &s.table, Key: key(integrationsPK, integrationSK(integrationID)),
		ConditionExpression: aws.String("attribute_exists(PK)"),
	}}
}

// putWith writes the run's META item under its condition together with with, in one transaction.
// A failed META condition comes back as a ConditionalCheckFailedException (as from PutItem), a
// failed condition of with as errIntegrationGone.
func (s *Store) putWith(ctx context.Context, put *types.Put, with *types.TransactWriteItem) error {
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{Put: put}, *with}}
	for attempt := 0; ; attempt++ {
		_, err := s.db.TransactWriteItems(ctx, in)
		var tc *types.TransactionCanceledException
		if !errors.As(err, &tc) {
			return err
		}
		switch {
		case reasonAt(tc, 0) == "ConditionalCheckFailed":
			return &types.ConditionalCheckFailedException{Message: aws.String("the run's condition failed")}
		case reasonAt(tc, 1) == "ConditionalCheckFailed":
			return errIntegrationGone
		case (reasonAt(tc, 0) == "TransactionConflict" || reasonAt(tc, 1) == "TransactionConflict") && attempt+1 < maxTxAttempts:
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

func reasonAt(tc *types.TransactionCanceledException, i int) string {
	if i >= len(tc.CancellationReasons) {
		return ""
	}
	return aws.ToString(tc.CancellationReasons[i].Code)
}

// DeleteIntegration removes an integration; ENOTFOUND when absent, ECONFLICT while one of its
// runs is waiting or querying. Run IDs left in the set by runs that are gone (expired) or ended
// are removed, after a strongly consistent read of each, and the delete is tried again.
func (s *Store) DeleteIntegration(ctx context.Context, id string) error {
	for attempt := 0; ; attempt++ {
		_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: &s.table, Key: key(integrationsPK, integrationSK(id)),
			ConditionExpression:      aws.String("attribute_exists(PK) AND attribute_not_exists(#a)"),
			ExpressionAttributeNames: map[string]string{"#a": attrActiveRuns},
		})
		if err == nil {
			return nil
		}
		if !isConditionFailed(err) {
			return fmt.Errorf("delete integration %s: %w", id, err)
		}
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &s.table, Key: key(integrationsPK, integrationSK(id)), ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String("#a"), ExpressionAttributeNames: map[string]string{"#a": attrActiveRuns},
		})
		if err != nil {
			return fmt.Errorf("delete integration %s: %w", id, err)
		}
		if out.Item == nil {
			return notFound("integration", id)
		}
		if attempt+1 >= maxTxAttempts {
			// The set changed between the reads, again and again: the integration is busy.
			return core.Errorf(core.ECONFLICT, "integration %q is starting or ending runs: try the delete again", id)
		}
		ss, _ := out.Item[attrActiveRuns].(*types.AttributeValueMemberSS)
		if ss == nil {
			continue // its last run ended since the delete was refused
		}
		for _, runID := range ss.Value {
			r, err := s.GetRun(ctx, runID)
			switch {
			case err == nil && !core.Ended(r.Status):
				return core.ActiveRunConflict(id, r)
			case err != nil && core.ErrorCode(err) != core.ENOTFOUND:
				return fmt.Errorf("delete integration %s: %w", id, err)
			}
			if err := s.unmarkStale(ctx, id, runID); err != nil {
				return fmt.Errorf("delete integration %s: %w", id, err)
			}
		}
	}
}

// unmarkStale removes a run that has ended or expired from the integration's active runs.
func (s *Store) unmarkStale(ctx context.Context, integrationID, runID string) error {
	u := s.markActive(integrationID, runID, false).Update
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
		ExpressionAttributeValues: u.ExpressionAttributeValues,
	})
	if isConditionFailed(err) {
		return nil // deleted meanwhile: the next attempt says ENOTFOUND
	}
	return err
}
