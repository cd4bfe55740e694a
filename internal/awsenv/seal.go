package awsenv

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/trailproof/trailproof/internal/kmsseal"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// sealKeyInfo separates the seal key from any other key derived from the same secret.
const sealKeyInfo = "trailproof seal key v1"

// sealerFromEnv returns the deployment's sealer, the same in every function: KMS when
// SEAL_KMS_KEY_ARN is set (the SealKmsKeyArn parameter); else AES-GCM under a key derived
// (HKDF-SHA256) from the Secrets Manager secret CloudFormation generated, since CloudFormation
// cannot generate 32 random bytes in a form the key would take directly; else, locally, AES-GCM
// under SEAL_KEY_FILE. The secret is read when the sealer is first used: only the functions that
// open or seal integration secrets need secretsmanager:GetSecretValue.
func sealerFromEnv(cfg aws.Config) (seal.Sealer, error) {
	switch key, arn, file := os.Getenv(EnvSealKMSKeyARN), os.Getenv(EnvSealKeySecretARN), os.Getenv(EnvSealKeyFile); {
	case key != "":
		s, err := kmsseal.New(kms.NewFromConfig(cfg), key)
		if err != nil {
			return nil, err
		}
		return s, nil
	case arn != "":
		sm := secretsmanager.NewFromConfig(cfg)
		return &lazySealer{load: func(ctx context.Context) (seal.Sealer, error) {
			out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
			if err != nil {
				return nil, fmt.Errorf("read the seal key secret %s: %w", arn, err)
			}
			if out.SecretString == nil || len(*out.SecretString) < 32 {
				return nil, fmt.Errorf("the seal key secret %s must hold at least 32 characters", arn)
			}
			key, err := DeriveSealKey(*out.SecretString)
			if err != nil {
				return nil, err
			}
			return seal.NewAESGCM(key)
		}}, nil
	case file != "":
		k, err := seal.LoadKey(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSealKeyFile, err)
		}
		return seal.NewAESGCM(k)
	default:
		return nil, errors.New("no seal key: set " + EnvSealKMSKeyARN + " or " + EnvSealKeySecretARN + " (deployed), or " + EnvSealKeyFile + " (local)")
	}
}

// lazySealer builds its sealer on first use and keeps it; a failed load is tried again on the
// next use (a Secrets Manager hiccup must not poison a warm process).
type lazySealer struct {
	load func(ctx context.Context) (seal.Sealer, error)
	mu   sync.Mutex
	s    seal.Sealer
}

func (l *lazySealer) get(ctx context.Context) (seal.Sealer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		s, err := l.load(ctx)
		if err != nil {
			return nil, err
		}
		l.s = s
	}
	return l.s, nil
}

// Seal seals with the deployment's key.
func (l *lazySealer) Seal(ctx context.Context, plaintext []byte, where seal.Binding) ([]byte, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Seal(ctx, plaintext, where)
}

// Open opens with the deployment's key.
func (l *lazySealer) Open(ctx context.Context, ciphertext []byte, where seal.Binding) ([]byte, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, ciphertext, where)
}

// DeriveSealKey derives the 32-byte seal key from the deployment's secret string. Anything
// that writes integrations into the deployed table must derive it the same way.
func DeriveSealKey(secret string) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, sealKeyInfo, seal.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive the seal key: %w", err)
	}
	return key, nil
}
