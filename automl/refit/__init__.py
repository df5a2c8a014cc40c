"""refit"""
