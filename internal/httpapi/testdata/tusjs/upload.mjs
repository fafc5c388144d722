// upload.mjs sends a file with tus-js-client to an upload URL the server
// already knows (the record's attachment path: uploadUrl, no creation), the
// way a collector app resumes after its link dropped. Driven by
// internal/httpapi/tusjs_test.go (this folder is its testdata):
//
//	node upload.mjs <url> <token> <file> [stop-after-bytes]
//
// With stop-after-bytes it aborts the upload mid-request once that many bytes
// were sent and prints "aborted <bytes>"; without, it uploads what is left
// and prints "done".
import * as tus from 'tus-js-client';
import fs from 'node:fs';

const [url, token, file, stopArg] = process.argv.slice(2);
const stop = Number(stopArg || 0);
const data = fs.readFileSync(file);

await new Promise((resolve, reject) => {
  const upload = new tus.Upload(data, {
    uploadUrl: url,
    uploadSize: data.length,
    headers: { Authorization: 'Bearer ' + token },
    chunkSize: 256 * 1024,
    // 409 (another request of this file still finishing) is retried: HEAD, then resume.
    retryDelays: [0, 200, 500, 1000, 2000],
    onProgress(sent) {
      if (stop && sent >= stop) {
        upload.abort().then(() => {
          console.log('aborted ' + sent);
          resolve();
        }, reject);
      }
    },
    onSuccess() {
      console.log('done');
      resolve();
    },
    onError: reject,
  });
  upload.start();
});
