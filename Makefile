# Not Hotdog: set-up, run, test, and reproduce the shipped model.
# Everything installs into .venv; `make run` needs only requirements.txt.
PYTHON_SYS ?= python3
VENV = .venv
PY = $(VENV)/bin/python
SHARED ?= $(or $(NOTHOTDOG_SHARED),../shared)
HOTDOG = $(SHARED)/datasets/hotdog
PIZZA = $(SHARED)/datasets/pizza
FOOD_SUBSET = food=dtu_hotdog_*,dtu_chilidog_*,dtu_frankfurter_*,dtu_food_*

.PHONY: run test model evaluate browser

## run: serve the shipped model at http://localhost:8000 (PORT=... to change)
run: $(VENV)/.serving
	$(VENV)/bin/gunicorn app:app

## test: install the development requirements (and Chromium, for the browser test), lint, run pytest
test: $(VENV)/.dev browser
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

$(VENV)/bin/python:
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.serving: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-batch.txt requirements-ray.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.serving

# Debian's Chromium and ChromeDriver; a test tool's own browser download cannot work offline.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium is not installed (apt-get install chromium): the browser test will skip"; fi; }

## model: train, export and card models/hotdog (about 27 min on 2 CPU cores)
# The Food-101 photos of the pizza set are added as extra food negatives (a pizza, a burger
# or a taco is never a hot dog), minus the reviewed exclusions; 30 % of the seefood_* photos
# are held out of training as an independent check of the food-photo case. All 16 blocks
# are fine-tuned with mixup for 12 epochs: against 10 blocks for 8 epochs without mixup,
# +4 of the 149 held-out seefood photos and +11 of the 1818 test photos, same validation.
model: $(VENV)/.dev
	$(PY) -m training.train $(HOTDOG)/train --out models/hotdog \
	    --description "Tells whether a photo shows a hot dog (hotdog) or anything else (not_hotdog)." \
	    --add not_hotdog=$(PIZZA)/train --exclude training/exclusions/hotdog.txt \
	    --holdout 'seefood_*' --test-dir $(HOTDOG)/test --subset '$(FOOD_SUBSET)' \
	    --fine-tune-blocks 16 --mixup 0.2 --fine-tune-epochs 12
	$(PY) -m training.evaluate models/hotdog $(PIZZA)/test \
	    --label-map pizza=not_hotdog not_pizza=not_hotdog --record food101_negatives \
	    --note "Food-101 dishes (pizza and others), all counted as not_hotdog"

## evaluate: full report and plots for the shipped model on the test split
evaluate: $(VENV)/.dev
	$(PY) -m training.evaluate models/hotdog $(HOTDOG)/test --subset '$(FOOD_SUBSET)' --out build/eval-hotdog
