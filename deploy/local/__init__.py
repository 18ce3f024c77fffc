"""The embedded launcher behind `make run`: every process of Zizhu on one machine."""
