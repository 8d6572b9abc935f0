package cache

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Uploads go to S3 in parts of uploadPartSize, uploadConcurrency at a time,
// so that an upload holds at most uploadConcurrency+1 parts in memory (one
// being filled), 20 MiB, whatever the archive's size: no more than the
// archive writer. Three parts in flight keep a loopback server or a nearby
// S3 busy; 5 MiB is S3's smallest part, and allows archives up to 48 GiB
// (maxParts parts). An object that fits in one part goes in one PUT.
const (
	uploadPartSize    = 5 << 20
	uploadConcurrency = 3
	maxParts          = 10000
)

// abortTimeout bounds the request that abandons a multipart upload, sent
// when ctx may be done already. A healthy server answers in milliseconds;
// a sick one must not hold up a cancelled build. A multipart upload left
// behind is invisible (no object) and a bucket's lifecycle rule removes it.
const abortTimeout = 3 * time.Second

func (s *s3Store) NewWriter(ctx context.Context, key, contentType string) (io.WriteCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	return &s3Writer{
		ctx:         ctx,
		s:           s,
		key:         key,
		contentType: contentType,
		slots:       make(chan struct{}, uploadConcurrency),
		free:        make(chan []byte, uploadConcurrency+1),
	}, nil
}

// s3Writer uploads an object: in one PUT on Close when it fits in a part,
// else as a multipart upload that starts when the first part is full, is
// completed on Close, and is aborted when anything fails.
type s3Writer struct {
	ctx         context.Context
	s           *s3Store
	key         string
	contentType string

	// Used by the caller's goroutine only.
	buf      []byte // the part being filled
	uploadID string // of the multipart upload, once started
	sent     int32  // parts started
	closed   bool

	slots chan struct{} // one for each part being sent
	free  chan []byte   // buffers of parts sent, for the next ones
	wg    sync.WaitGroup

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error // the first failure: the upload is abandoned
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("put %s: writer already closed", w.s.where(w.key))
	}
	n := 0
	for len(p) > 0 {
		if err := w.failure(); err != nil {
			return n, w.s.fail("put", w.key, err)
		}
		if len(w.buf) == uploadPartSize {
			if err := w.send(); err != nil {
				w.setFailure(err)
				continue
			}
		}
		c := min(len(p), uploadPartSize-len(w.buf))
		if len(w.buf)+c > cap(w.buf) {
			// The first part grows as it fills, so that a small object
			// takes little memory; later ones reuse whole buffers.
			grown := make([]byte, len(w.buf), min(max(2*cap(w.buf), len(w.buf)+c, 64<<10), uploadPartSize))
			copy(grown, w.buf)
			w.buf = grown
		}
		w.buf = append(w.buf, p[:c]...)
		p = p[c:]
		n += c
	}
	return n, nil
}

// send starts sending the part in buf, first starting the multipart upload
// if need be, once fewer than uploadConcurrency parts are in flight.
func (w *s3Writer) send() error {
	if w.uploadID == "" {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket:            aws.String(w.s.st.bucket),
			Key:               aws.String(w.s.st.prefix + w.key),
			ContentType:       aws.String(w.contentType),
			ChecksumAlgorithm: w.s.checksum,
		})
		if err != nil {
			return err
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	if w.sent == maxParts {
		return fmt.Errorf("more than %d parts of %d MiB", maxParts, uploadPartSize>>20)
	}
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.sent++
	num, body := w.sent, w.buf
	select {
	case w.buf = <-w.free:
	default:
		w.buf = make([]byte, 0, uploadPartSize)
	}
	w.wg.Go(func() {
		err := w.sendPart(num, body)
		// The buffer is free before the slot: the next part finds it.
		w.free <- body[:0]
		<-w.slots
		if err != nil {
			w.setFailure(err)
		}
	})
	return nil
}

func (w *s3Writer) sendPart(num int32, body []byte) error {
	out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket:            aws.String(w.s.st.bucket),
		Key:               aws.String(w.s.st.prefix + w.key),
		UploadId:          aws.String(w.uploadID),
		PartNumber:        aws.Int32(num),
		Body:              bytes.NewReader(body),
		ContentLength:     aws.Int64(int64(len(body))),
		ChecksumAlgorithm: w.s.checksum,
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.parts = append(w.parts, types.CompletedPart{
		PartNumber:        aws.Int32(num),
		ETag:              out.ETag,
		ChecksumCRC32:     out.ChecksumCRC32,
		ChecksumCRC32C:    out.ChecksumCRC32C,
		ChecksumCRC64NVME: out.ChecksumCRC64NVME,
		ChecksumSHA1:      out.ChecksumSHA1,
		ChecksumSHA256:    out.ChecksumSHA256,
	})
	return nil
}

func (w *s3Writer) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// setFailure keeps the first failure.
func (w *s3Writer) setFailure(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Close puts the object in place, or abandons the upload after a failure
// or once ctx is done.
func (w *s3Writer) Close() error {
	if w.closed {
		return fmt.Errorf("put %s: writer already closed", w.s.where(w.key))
	}
	w.closed = true
	if err := w.finish(); err != nil {
		return w.s.fail("put", w.key, err)
	}
	return nil
}

func (w *s3Writer) finish() error {
	err := w.failure()
	if err == nil {
		err = w.ctx.Err()
	}
	if w.uploadID == "" {
		if err != nil {
			return err
		}
		_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{
			Bucket:            aws.String(w.s.st.bucket),
			Key:               aws.String(w.s.st.prefix + w.key),
			Body:              bytes.NewReader(w.buf),
			ContentLength:     aws.Int64(int64(len(w.buf))),
			ContentType:       aws.String(w.contentType),
			ChecksumAlgorithm: w.s.checksum,
		})
		return err
	}
	if err == nil && len(w.buf) > 0 {
		err = w.send()
	}
	w.wg.Wait()
	if err == nil {
		err = w.failure()
	}
	if err == nil {
		slices.SortFunc(w.parts, func(a, b types.CompletedPart) int {
			return cmp.Compare(aws.ToInt32(a.PartNumber), aws.ToInt32(b.PartNumber))
		})
		_, err = w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(w.s.st.bucket),
			Key:             aws.String(w.s.st.prefix + w.key),
			UploadId:        aws.String(w.uploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
		})
	}
	if err != nil {
		w.abort()
	}
	return err
}

// abort abandons the multipart upload; see abortTimeout.
func (w *s3Writer) abort() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
	defer cancel()
	_, _ = w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(w.s.st.bucket),
		Key:      aws.String(w.s.st.prefix + w.key),
		UploadId: aws.String(w.uploadID),
	})
}
