// Package store is the parent of trailproof's core.Store implementations: bolt (an embedded
// bbolt file, for the local binary) and dynamo (one DynamoDB table, for the serverless
// deployment). Both keep integration secrets sealed by a seal.Sealer and pass the same
// conformance suite, storetest.Run.
package store
