"""`grader serve`: a grading service students upload files to, on one machine or many.

The trusted side, all of it: submissions arrive as bytes over HTTP and are only stored,
hashed and handed to the same grading code as `grader batch` (`grader.grading.check`), which
runs them in the sandbox. The pieces:

- `store.py`: submissions, their state and reports in one SQLite file (WAL, one transaction
  per change), so that a kill at any moment loses no accepted submission, and each is
  finished exactly once;
- `roster.py`: who may submit (a `student,token` CSV) and the staff token; constant-time
  comparisons;
- `pool.py`: the local workers (threads, each grading through `grader.engine.Grader`, whose
  `grade_bytes` turns anything that goes wrong into that student's `crashed` report);
- `queue.py`: the Redis queue (Dramatiq) for grading on other machines, and `grader batch
  --queue`;
- `app.py`: the HTTP API and the page (Starlette, served by uvicorn);
- `openapi.py`: the API's OpenAPI 3.1 description (`GET /api/openapi.json`);
- `http.py`: uvicorn's HTTP protocol with deadlines for slow clients and a cap per address.
"""
