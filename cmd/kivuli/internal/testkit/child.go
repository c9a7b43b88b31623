package testkit

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

// childMain is the test binary run as a command of kivuli exec:
//
//	env          print the AWS_* variables
//	exit N       exit with status N
//	signals      print "ready", then "usr1" on SIGUSR1, and exit 42 on SIGTERM
//	wait         print "ready" and wait to be killed
//	sdk          read credentials as an AWS SDK does (config.LoadDefaultConfig)
//	             and print the access key; then ask the endpoint of
//	             AWS_CONTAINER_CREDENTIALS_FULL_URI, if any, without the
//	             token and print the status
func ChildMain(args []string) int {
	switch args[0] {
	case "env":
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "AWS_") {
				fmt.Println(kv)
			}
		}
		return 0
	case "exit":
		n, _ := strconv.Atoi(args[1])
		return n
	case "signals":
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGUSR1, syscall.SIGTERM)
		fmt.Println("ready")
		for sig := range ch {
			if sig == syscall.SIGTERM {
				fmt.Println("term")
				return 42
			}
			fmt.Println("usr1")
		}
	case "wait":
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 0
	case "sdk":
		ctx := context.Background()
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		v, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("key", v.AccessKeyID, v.Source, v.Expires.UTC().Format(time.RFC3339))
		if uri := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"); uri != "" {
			resp, err := http.Get(uri)
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			resp.Body.Close()
			fmt.Println("without-token", resp.StatusCode)
		}
		fmt.Println("region", cfg.Region)
		return 0
	}
	return 2
}

// lines reads the lines a process writes, for a test to wait on.
func Lines(t *testing.T, s *bufio.Scanner) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		for s.Scan() {
			ch <- s.Text()
		}
	}()
	return ch
}
