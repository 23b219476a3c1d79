package grpcmap_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/grpcmap"
)

var errInvalid = errors.New("invalid")

func TestUnaryRunsTheThreeStepsInOrder(t *testing.T) {
	t.Parallel()
	errParse, errRun := errors.New("parse"), errors.New("run")
	parse := func(_ context.Context, req string) (int, error) {
		if req == "bad" {
			return 0, errParse
		}
		return strconv.Atoi(req)
	}
	ran := 0
	run := func(_ context.Context, n int) (int, error) {
		ran++
		if n < 0 {
			return 0, errRun
		}
		return n * 2, nil
	}
	render := func(n int) *string { s := strconv.Itoa(n); return &s }

	resp, err := grpcmap.Unary(t.Context(), "21", parse, run, render)
	require.NoError(t, err)
	require.Equal(t, "42", *resp)

	resp, err = grpcmap.Unary(t.Context(), "bad", parse, run, render)
	require.ErrorIs(t, err, errParse)
	require.Nil(t, resp)
	require.Equal(t, 1, ran, "run is not called when parse refuses the request")

	resp, err = grpcmap.Unary(t.Context(), "-1", parse, run, render)
	require.ErrorIs(t, err, errRun)
	require.Nil(t, resp)
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	require.Nil(t, grpcmap.Timestamp(time.Time{}))
	at := time.Date(2026, 12, 1, 15, 0, 0, 7, time.UTC)
	require.True(t, grpcmap.Timestamp(at).AsTime().Equal(at))
}

func TestPageSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   int32
		want int
		err  bool
	}{
		{in: -1, err: true}, {in: 0, want: grpcmap.DefaultPageSize}, {in: 1, want: 1}, {in: 200, want: 200}, {in: 201, want: 200},
	} {
		got, err := grpcmap.PageSize(tc.in, 200, errInvalid)
		if tc.err {
			require.ErrorIs(t, err, errInvalid, "%d", tc.in)
			continue
		}
		require.NoError(t, err, "%d", tc.in)
		require.Equal(t, tc.want, got, "%d", tc.in)
	}
}

func TestSeqToken(t *testing.T) {
	t.Parallel()
	for tok, want := range map[string]int64{"": 0, "1": 1, "9223372036854775807": 1<<63 - 1} {
		got, err := grpcmap.SeqToken(tok, errInvalid)
		require.NoError(t, err, "%q", tok)
		require.Equal(t, want, got, "%q", tok)
	}
	for _, tok := range []string{"0", "-3", "x", "1.5", "9223372036854775808"} {
		_, err := grpcmap.SeqToken(tok, errInvalid)
		require.ErrorIs(t, err, errInvalid, "%q", tok)
	}
}

func TestPage(t *testing.T) {
	t.Parallel()
	token := func(n int) string { return strconv.Itoa(n) }
	rows, next := grpcmap.Page([]int{1, 2, 3}, 2, token)
	require.Equal(t, []int{1, 2}, rows)
	require.Equal(t, "2", next)
	rows, next = grpcmap.Page([]int{1, 2}, 2, token)
	require.Equal(t, []int{1, 2}, rows)
	require.Empty(t, next, "the last page has no next token")
}

func TestMap(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"1", "2"}, grpcmap.Map([]int{1, 2}, strconv.Itoa))
	require.Nil(t, grpcmap.Map([]int{}, strconv.Itoa))
}

func TestActorPassesTheCallersSubject(t *testing.T) {
	t.Parallel()
	parse := grpcmap.Actor(func(req, actor string) (string, error) { return req + " by " + actor, nil })
	got, err := parse(auth.WithClaims(t.Context(), auth.Claims{Subject: "ops-1"}), "refund")
	require.NoError(t, err)
	require.Equal(t, "refund by ops-1", got)
	got, err = parse(t.Context(), "refund")
	require.NoError(t, err)
	require.Equal(t, "refund by ", got, "no token, no actor")
}

type listRequest struct {
	size  int32
	token string
}

func (r listRequest) GetPageSize() int32   { return r.size }
func (r listRequest) GetPageToken() string { return r.token }

func TestSeqPage(t *testing.T) {
	t.Parallel()
	size, before, err := grpcmap.SeqPage(listRequest{}, 500, errInvalid)
	require.NoError(t, err)
	require.Equal(t, grpcmap.DefaultPageSize, size)
	require.Zero(t, before)
	size, before, err = grpcmap.SeqPage(listRequest{size: 900, token: "42"}, 500, errInvalid)
	require.NoError(t, err)
	require.Equal(t, 500, size)
	require.Equal(t, int64(42), before)
	_, _, err = grpcmap.SeqPage(listRequest{size: -1}, 500, errInvalid)
	require.ErrorIs(t, err, errInvalid)
	_, _, err = grpcmap.SeqPage(listRequest{token: "x"}, 500, errInvalid)
	require.ErrorIs(t, err, errInvalid)
}
