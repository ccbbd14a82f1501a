package main

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestMain sets gin's process-wide mode as main does (the tests call run,
// not main), then prints one line saying what was skipped and why.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	testenv.Main(m)
}
