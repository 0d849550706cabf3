// The single-job form: built from /v1/models parameter schemas (see parts/job_form.html).
