package cache

import (
	"testing"

	"github.com/taskrunner/taskrunner/internal/cache/s3test"
)

// TestMain stops the S3 server that the S3 tests start.
func TestMain(m *testing.M) { s3test.Main(m) }
