package cloudtrail

// The methods below let the workflow tell these errors apart (workflow.Classifier) without
// importing this package, and map them onto the step errors Step Functions retries.

// Throttled reports true: CloudTrail kept throttling.
func (e *ThrottledError) Throttled() bool { return true }

// Temporary reports true: a later attempt may pass.
func (e *ThrottledError) Temporary() bool { return true }

// Throttled reports false.
func (e *TransientError) Throttled() bool { return false }

// Temporary reports true: a 5xx or a network fault may pass.
func (e *TransientError) Temporary() bool { return true }

// Throttled reports false.
func (e *AuthError) Throttled() bool { return false }

// Temporary reports false: the settings or the IAM policy must change first.
func (e *AuthError) Temporary() bool { return false }

// Throttled reports false.
func (e *RequestError) Throttled() bool { return false }

// Temporary reports false: the same request fails the same way.
func (e *RequestError) Temporary() bool { return false }
