lint:
	ruff check . && ruff format --check .

test:
	pytest

ci:
	.ci/run

.PHONY: lint test ci
