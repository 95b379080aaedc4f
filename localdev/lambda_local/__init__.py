"""The handler without a deployment: on an event file, under ``sam local invoke``; sample events."""
