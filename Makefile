# The two commands of the README, plus the stack's own start and stop.
.PHONY: demo test up down

demo:
	./localstack/demo.sh

test:
	./localstack/test.sh

up:
	./localstack/install.sh && ./localstack/up.sh

down:
	./localstack/down.sh
